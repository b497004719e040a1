import json

import orjson
import typer
from typer.testing import CliRunner

from distillguard.cli.detect import detect

app = typer.Typer()
app.command("detect")(detect)
app.command("noop")(lambda: None)  # keep typer in multi-command mode, as in cli/main.py


def write(path, rows):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def test_detect_json_shape_with_and_without_labels(tmp_path, population):
    recs, labels = population
    write(tmp_path / "t.jsonl", recs)
    write(tmp_path / "l.jsonl", [{"org": o, "label": lab, "ring": None} for o, lab in labels.items()])
    res = CliRunner().invoke(app, ["detect", "--input", str(tmp_path / "t.jsonl"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"accounts"}
    assert {a["org"] for a in doc["accounts"]} == set(labels)
    for a in doc["accounts"]:
        assert {"org", "score", "label", "flagged", "ring", "requests", "reasons"} <= set(a)
        assert 0.0 <= a["score"] <= 1.0 and isinstance(a["reasons"], list)
    res = CliRunner().invoke(app, ["detect", "--input", str(tmp_path / "t.jsonl"), "--labels",
                                   str(tmp_path / "l.jsonl"), "--json"])
    doc = json.loads(res.stdout)
    assert {"auc", "tpr_at_fpr_0.001", "ring_recall", "evaluation_label_accuracy"} <= set(doc["metrics"])
    assert doc["metrics"]["auc"] > 0.9
    res = CliRunner().invoke(app, ["detect", "--input", str(tmp_path / "t.jsonl"), "--labels",
                                   str(tmp_path / "l.jsonl"), "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").read_text().startswith("<")


def test_detect_table_and_missing_file(tmp_path, population):
    write(tmp_path / "t.jsonl", population[0][:400])
    res = CliRunner().invoke(app, ["detect", "--input", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 0 and "accounts" in res.stdout
    res = CliRunner().invoke(app, ["detect", "--input", str(tmp_path / "nope.jsonl"), "--json"])
    assert res.exit_code == 2
