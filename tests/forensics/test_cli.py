import json

import pytest
from typer.testing import CliRunner

from distillguard.cli.trace import trace
from distillguard.config import load_settings
from distillguard.ledger.record import LedgerRecord
from distillguard.ledger.store import LedgerStore
from distillguard.services import open_store


def _app():
    import typer

    app = typer.Typer()
    app.command("trace")(trace)
    app.command("noop")(lambda: None)  # keep "trace" a sub-command
    return app


def _fill_ledger(outputs, n=12):
    store = open_store(load_settings())
    ledger = LedgerStore(store.engine)
    recs = [LedgerRecord(id=o.id, ts=o.ts, endpoint="/v1/chat/completions", status=200, org=o.org, key="key_x",
                         request={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": o.prompt}]},
                         response_text=o.answer) for o in outputs[:n]]
    assert ledger.write_batch(recs) == n
    return ledger


def test_trace_json_shape_against_the_ledger(dg_home, tmp_path, outputs, answers):
    ledger = _fill_ledger(outputs)
    ds = tmp_path / "ds.jsonl"
    rows = [{"instruction": outputs[3].prompt, "input": "", "output": outputs[3].answer.replace("The ", "the ")},
            {"text": answers[300][1]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": outputs[8].answer}]}]
    ds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = tmp_path / "r.html"
    res = CliRunner().invoke(_app(), ["trace", str(ds), "--json", "--report", str(report)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(doc) == {"records", "summary"}
    r0, r1, r2 = doc["records"]
    assert set(r0) == {"index", "derived", "confidence", "org", "matched_request", "evidence"}
    assert (r0["derived"], r0["org"], r0["matched_request"]) == (True, outputs[3].org, outputs[3].id)
    assert any(e.startswith("prompt match") for e in r0["evidence"])
    assert r1["derived"] is False and r1["org"] is None
    assert (r2["index"], r2["matched_request"]) == (2, outputs[8].id)
    assert doc["summary"]["derived"] == 2 and doc["summary"]["index_added"] == 12
    assert "<mark>" in report.read_text()
    # the persisted index is reused and updated incrementally
    ledger.write_batch([LedgerRecord(id=outputs[20].id, ts=5000.0, endpoint="/v1/chat/completions", status=200,
                                     org="org_new", response_text=outputs[20].answer)])
    ds.write_text(json.dumps({"text": outputs[20].answer}) + "\n")
    doc = json.loads(CliRunner().invoke(_app(), ["trace", str(ds), "--json"]).stdout.strip().splitlines()[-1])
    assert doc["summary"]["index_added"] == 1 and doc["summary"]["index_size"] == 13
    assert doc["records"][0]["org"] == "org_new"


@pytest.mark.parametrize("ledger_db", ["sqlite", "postgres"])
def test_trace_with_workers_reads_the_ledger_in_each_and_gives_the_same_result(dg_home, tmp_path, outputs, answers,
                                                                             ledger_db, request, monkeypatch):
    if ledger_db == "postgres":  # the workers read the ledger over their own connections (worker_init)
        monkeypatch.setenv("DG_DATABASE_URL", request.getfixturevalue("postgres_url"))
    _fill_ledger(outputs, n=40)
    ds = tmp_path / "ds.jsonl"
    rows = [{"text": answers[200 + i % 200][1]} for i in range(2100)]  # more than one batch of 2000
    for i in (5, 1999, 2001, 2090):  # copies in both batches
        rows[i] = {"instruction": outputs[i % 40].prompt, "input": "", "output": outputs[i % 40].answer}
    ds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = []
    for w in ("1", "2"):
        res = CliRunner().invoke(_app(), ["trace", str(ds), "--json", "--workers", w])
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    one, two = docs
    assert one["records"] == two["records"]
    assert [r["index"] for r in two["records"] if r["derived"]] == [5, 1999, 2001, 2090]
    assert [r["matched_request"] for r in two["records"] if r["derived"]] == [outputs[i % 40].id
                                                                            for i in (5, 1999, 2001, 2090)]


def test_trace_bad_dataset_is_a_json_error(dg_home, tmp_path):
    ds = tmp_path / "ds.jsonl"
    ds.write_text('{"foo": 1}\n')
    res = CliRunner().invoke(_app(), ["trace", str(ds), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout.strip().splitlines()[-1])["error"]["code"] == "invalid_dataset"


def test_probe_cli_white_box_names_the_org_whose_outputs_a_model_learned(dg_home, answers, tmp_path):
    """`probe --model-file suspect --reference-file clean --json` against the orgs of the store (contract shape)."""
    import json as _json

    from typer.testing import CliRunner

    from distillguard.cli.main import app
    from distillguard.config import load_settings
    from distillguard.forensics.radioactivity import NgramLM
    from distillguard.services import open_store
    from distillguard.watermark import Watermarker

    settings = load_settings()
    access = open_store(settings).access
    harvester, other = access.apply("Harvester Inc"), access.apply("Other Co")
    wm = Watermarker(settings.secret.get_secret_value())
    texts = [a for _, a in answers]
    clean, extra = texts[:300], texts[300:400]
    NgramLM().train(clean).save(tmp_path / "ref.json.gz")
    NgramLM().train(clean + [wm.apply(a, harvester.id) for a in extra]).save(tmp_path / "suspect.json.gz")
    NgramLM().train(clean + extra).save(tmp_path / "innocent.json.gz")

    def probe(model):
        r = CliRunner().invoke(app, ["probe", "--model-file", str(tmp_path / model),
                                     "--reference-file", str(tmp_path / "ref.json.gz"), "--json"])
        assert r.exit_code == 0, r.output
        return _json.loads(r.stdout)

    hit = probe("suspect.json.gz")
    assert set(hit) >= {"detected", "org", "tokens_scored", "orgs"}
    assert hit["detected"] and hit["org"] == harvester.id
    assert {o["org"] for o in hit["orgs"]} == {harvester.id, other.id}
    miss = probe("innocent.json.gz")
    assert not miss["detected"] and miss["org"] is None
