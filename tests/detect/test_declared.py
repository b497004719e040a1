"""Declared purposes (``detect.declared``): accounts that declared fine-tuning train the model but do not set its
thresholds, and a flag on one of them asks the reviewer for an uploads check."""

from __future__ import annotations

import json

import orjson
import pytest
import typer
from typer.testing import CliRunner

from distillguard.cli.detect import detect
from distillguard.detect import train
from distillguard.detect.bench import default_index
from distillguard.detect.declared import (
    REVIEW, RING_UNCOVERED, annotate, declares_fine_tuning, mark_signal, read_declarations,
)
from distillguard.detect.engine import AccountResult, Report
from distillguard.detect.features import extract
from distillguard.detect.model import ScoringModel


@pytest.mark.parametrize("purposes, expected", [
    (["fine-tuning"], True), (["chat", "Fine tuning"], True), (["finetune"], True), (["fine_tuned"], True),
    (["chat", "classification"], False), (["fine-tuning of our classifier"], False), ([], False), (None, False),
])
def test_which_purposes_declare_fine_tuning(purposes, expected):
    assert declares_fine_tuning(purposes) is expected


def _write(path, rows):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_a_bad_declarations_file_is_an_error_naming_the_line(tmp_path):
    ok = _write(tmp_path / "ok.jsonl", [{"org": "a", "purposes": ["chat"]}, {"org": "b", "label": "benign"}])
    assert read_declarations(ok) == {"a": ["chat"], "b": []}
    for bad, what in (([{"org": "x"}, {"org": "y", "purposes": "chat"}], ":2: \"purposes\""),
                      ([{"org": 3}], ":1: a declaration needs")):
        with pytest.raises(ValueError, match=what):
            read_declarations(_write(tmp_path / "bad.jsonl", bad))
    (tmp_path / "junk.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=":1: not JSON"):
        read_declarations(tmp_path / "junk.jsonl")


def _stream(recs):
    bench = default_index()
    return [(r["org"], extract(r, bench)) for r in recs]


def test_declared_accounts_do_not_set_the_thresholds(population):
    """The population's harvesters, relabelled benign (a fine-tuning customer's traffic looks the same): undeclared,
    their scores become the top of the calibration scores; declared, they are left out."""
    recs, labels = population
    stream = _stream(recs)
    harvesters = {o for o, lab in labels.items() if o.startswith("harvest")}
    undeclared = {o: {"org": o, "label": "benign" if o in harvesters else lab} for o, lab in labels.items()}
    declared = {o: dict(d, purposes=["fine-tuning"] if o in harvesters else ["chat"]) for o, d in undeclared.items()}
    a, b = ScoringModel.load(), ScoringModel.load()
    train.calibrate(a, stream, undeclared)
    train.calibrate(b, stream, declared)
    n_benign = sum(d["label"] == "benign" for d in undeclared.values())
    assert len(a.benign_scores) == n_benign and len(b.benign_scores) == n_benign - len(harvesters)
    assert max(a.benign_scores) > 0.9 > max(b.benign_scores)


app = typer.Typer()
app.command("detect")(detect)
app.command("noop")(lambda: None)


def test_detect_marks_flagged_accounts_that_declared_fine_tuning(tmp_path, population):
    recs, labels = population
    traffic = _write(tmp_path / "t.jsonl", recs)
    decl = _write(tmp_path / "d.jsonl", [{"org": o, "purposes": ["fine-tuning"] if o in ("harvest0", "chat0")
                                          else ["chat"]} for o in labels if o != "chat1"])
    res = CliRunner().invoke(app, ["detect", "--input", str(traffic), "--declarations", str(decl), "--json"])
    assert res.exit_code == 0, res.output
    acc = {a["org"]: a for a in json.loads(res.stdout)["accounts"]}
    assert acc["harvest0"]["flagged"] and acc["harvest0"]["reasons"][0] == REVIEW
    assert acc["harvest0"]["purposes"] == ["fine-tuning"]
    assert acc["harvest1"]["flagged"] and REVIEW not in acc["harvest1"]["reasons"]
    assert not acc["chat0"]["flagged"] and REVIEW not in acc["chat0"]["reasons"]  # declared, not flagged
    assert "purposes" not in acc["chat1"]  # not in the declarations: nothing known
    bad = _write(tmp_path / "bad.jsonl", [{"purposes": []}])
    res = CliRunner().invoke(app, ["detect", "--input", str(traffic), "--declarations", str(bad), "--json"])
    assert res.exit_code == 2 and "bad.jsonl:1" in res.output


def test_an_online_signal_gets_the_purposes_and_a_flag_the_review_question():
    sig = {"org": "o", "flagged": True, "reasons": ["share of fresh prompts ..."]}
    assert mark_signal(sig, ["fine-tuning"])["reasons"] == [REVIEW, "share of fresh prompts ..."]
    assert mark_signal(sig, ["chat"]) == dict(sig, purposes=["chat"])
    calm = dict(sig, flagged=False)
    assert mark_signal(calm, ["fine-tuning"])["reasons"] == calm["reasons"]
    assert sig["reasons"] == ["share of fresh prompts ..."]  # the detector's own signal is not changed


def test_an_online_ring_signal_is_not_covered_by_one_members_declaration():
    sig = {"org": "o", "flagged": True, "ring": "ring-2", "reasons": ["ring-2: 5 accounts scored together"]}
    assert mark_signal(sig, ["fine-tuning"], uncovered=3)["reasons"][0] == RING_UNCOVERED.format(ring="ring-2", n=3)
    assert mark_signal(sig, ["fine-tuning"], uncovered=0)["reasons"][0] == REVIEW  # every other member declared it
    assert mark_signal(dict(sig, ring=None), ["fine-tuning"], uncovered=3)["reasons"][0] == REVIEW


def test_fine_tuning_customers_train_as_collecting_answers(population):
    """A benign fine-tuning customer collects answers as training data: its vectors train as distillation (what
    collecting looks like), while its label, and so the evaluation, stays benign."""
    recs, _ = population
    stream = _stream([r for r in recs if r["org"] in ("harvest0", "chat0")])
    labels = {"harvest0": {"org": "harvest0", "label": "benign", "kind": "benign-finetune"},
              "chat0": {"org": "chat0", "label": "benign", "kind": "benign-chat"}}
    _, ys, orgs = train.training_vectors(stream, labels)
    by = {o: {y for y, o2 in zip(ys, orgs) if o2 == o} for o in labels}
    assert by == {"harvest0": {"distillation"}, "chat0": {"benign"}}
    assert labels["harvest0"]["label"] == "benign"


def test_a_declaration_does_not_cover_a_ring_with_undeclared_members():
    def acc(org, ring=None, flagged=True):
        return AccountResult(org=org, score=0.99 if flagged else 0.1, label="distillation" if flagged else "benign",
                             flagged=flagged, ring=ring, requests=100, reasons=["why"])
    rep = Report([acc("solo"), acc("r1a", "ring-1"), acc("r1b", "ring-1"), acc("r2a", "ring-2"), acc("r2b", "ring-2"),
                  acc("calm", flagged=False), acc("unknown")], [], 0.95, 0.001, 700)
    ft, chat = ["fine-tuning"], ["chat"]
    check = annotate(rep, {"solo": ft, "r1a": ft, "r1b": chat, "r2a": ft, "r2b": ft, "calm": ft})
    assert check == {"solo", "r2a", "r2b"}
    by = {a.org: a for a in rep.accounts}
    assert by["solo"].reasons == [REVIEW, "why"] and by["r2a"].reasons[0] == REVIEW
    assert by["r1a"].reasons[0].startswith("declared purpose 'fine-tuning', but ring-1 also has 1 flagged member")
    assert by["r1b"].reasons == ["why"] and by["calm"].reasons == ["why"] and by["calm"].purposes == ft
    assert by["unknown"].purposes is None and by["unknown"].reasons == ["why"]
