"""Evaluation maths on hand-made inputs with known answers."""

from __future__ import annotations

import pytest

from distillguard.sim.metrics import evaluate, join, tpr_at_fpr
from distillguard.sim.report import render, text_tables


def _acc(org, score, flagged=False, label=None, after=None):
    return {"org": org, "score": score, "flagged": flagged, "label": label, "flagged_after": after, "requests": 100}


def test_perfect_separation():
    labels = [{"org": f"b{i}", "label": "benign", "ring": None} for i in range(10)]
    labels += [{"org": f"d{i}", "label": "distillation", "ring": None} for i in range(5)]
    accounts = [_acc(f"b{i}", 0.1 + i / 100) for i in range(10)] + [_acc(f"d{i}", 0.9, True, after=50 * (i + 1))
                                                                      for i in range(5)]
    m = evaluate(accounts, labels)
    assert m["auc"] == 1.0
    assert m["tpr_at_fpr_0.01"] == 1.0 and m["tpr_at_fpr_0.001"] == 1.0
    assert m["tpr_flagged"] == 1.0 and m["fpr_flagged"] == 0.0
    assert m["median_requests_to_flag"] == {"distillation": 150.0}


def test_auc_counts_pairs_and_ties():
    # positives 0.8, 0.4; negatives 0.6, 0.4, 0.2 → pairs won: (0.8: 3) + (0.4: 1 + tie 0.5) = 4.5 of 6
    labels = [{"org": o, "label": lab, "ring": None} for o, lab in
              [("p1", "distillation"), ("p2", "distillation"), ("n1", "benign"), ("n2", "benign"), ("n3", "evaluation")]]
    accounts = [_acc("p1", 0.8), _acc("p2", 0.4), _acc("n1", 0.6), _acc("n2", 0.4), _acc("n3", 0.2)]
    m = evaluate(accounts, labels)
    assert m["auc"] == pytest.approx(4.5 / 6)
    # a threshold above 0.6 admits no negative: only p1 → TPR 0.5; tied 0.4 cannot be split
    assert m["tpr_at_fpr_0.01"] == 0.5


def test_tpr_at_fpr_uses_the_allowed_false_positives():
    labels = [{"org": f"n{i}", "label": "benign", "ring": None} for i in range(100)]
    labels += [{"org": f"p{i}", "label": "distillation", "ring": None} for i in range(10)]
    accounts = [_acc(f"n{i}", i / 1000) for i in range(99)] + [_acc("n99", 0.95)]  # one benign scores high
    accounts += [_acc(f"p{i}", 0.5 + i / 100) for i in range(10)]  # 0.5 .. 0.59
    rows = join(accounts, labels)
    assert tpr_at_fpr(rows, 0.01) == 1.0  # one false positive of 100 is allowed at 1%
    assert tpr_at_fpr(rows, 0.001) == 0.0  # none at 0.1%: nothing scores above the benign 0.95


def test_rings_eval_accuracy_and_missing_accounts():
    labels = [{"org": f"r{i}", "label": "distillation", "ring": "ring-1", "kind": "distill-ring"} for i in range(4)]
    labels += [{"org": f"s{i}", "label": "distillation", "ring": "ring-2", "kind": "distill-ring"} for i in range(2)]
    labels += [{"org": "e1", "label": "evaluation", "ring": None}, {"org": "e2", "label": "evaluation", "ring": None},
               {"org": "b1", "label": "benign", "ring": None}]
    accounts = [_acc("r0", 0.9, True), _acc("r1", 0.9, True), _acc("r2", 0.9, True), _acc("r3", 0.2),
                _acc("s0", 0.9, True), _acc("e1", 0.1, label="evaluation"), _acc("e2", 0.1, label="benign"),
                _acc("b1", 0.0), _acc("unlabelled", 0.99, True)]  # s1 missing: counts as score 0, not flagged
    m = evaluate(accounts, labels)
    assert m["accounts"] == 9
    assert m["ring_recall"] == pytest.approx(4 / 6)
    assert m["rings"]["per_ring"] == {"ring-1": 0.75, "ring-2": 0.5}
    assert m["evaluation_label_accuracy"] == 0.5
    kinds = {k["kind"]: k for k in m["per_kind"]}
    assert kinds["distill-ring"]["accounts"] == 6 and kinds["distill-ring"]["flagged"] == pytest.approx(4 / 6)


def test_per_scenario_table():
    labels = [{"org": "a", "label": "distillation", "ring": None, "scenario": "x"},
              {"org": "b", "label": "benign", "ring": None, "scenario": "x"},
              {"org": "c", "label": "distillation", "ring": None, "scenario": "y"},
              {"org": "d", "label": "benign", "ring": None, "scenario": "y"}]
    accounts = [_acc("a", 0.9), _acc("b", 0.1), _acc("c", 0.1), _acc("d", 0.9)]
    per = {r["scenario"]: r for r in evaluate(accounts, labels)["per_scenario"]}
    assert per["x"]["auc"] == 1.0 and per["y"]["auc"] == 0.0


def test_report_is_self_contained_html():
    labels = [{"org": "a", "label": "distillation", "ring": None, "scenario": "x"},
              {"org": "b", "label": "benign", "ring": None, "scenario": "y"},
              {"org": "c", "label": "evaluation", "ring": None, "scenario": "y"}]
    doc = render([_acc("a", 0.9, True, after=12), _acc("b", 0.1), _acc("c", 0.2)], labels)
    assert doc.startswith("<!doctype html>") and doc.count("<svg") >= 3
    assert "<script" not in doc and "http://" not in doc.replace("http://www.w3.org/2000/svg", "")
    assert "tpr_at_fpr_0.001" in doc and "polyline" in doc


def test_text_tables_show_every_kind():
    labels = [{"org": "a", "label": "distillation", "ring": "ring-1", "kind": "distill-ring"},
              {"org": "b", "label": "benign", "ring": None, "kind": "benign-chat"}]
    text = text_tables(evaluate([_acc("a", 0.9, True, after=40), _acc("b", 0.1)], labels))
    assert "distill-ring" in text and "benign-chat" in text and "auc" in text and "40" in text


def test_declared_fine_tuning_negatives_are_counted_apart_from_false_positives():
    """A benign account that declared fine-tuning and scores high is not a false positive and does not lower the
    AUC: its flagged share is reported on its own. A distiller that declared it is still a positive."""
    labels = [{"org": "b1", "label": "benign", "ring": None, "purposes": ["chat"]},
              {"org": "b2", "label": "benign", "ring": None},
              {"org": "ft", "label": "benign", "ring": None, "purposes": ["chat", "fine-tuning"]},
              {"org": "d1", "label": "distillation", "ring": None, "purposes": ["Fine tuning"]},
              {"org": "d2", "label": "distillation", "ring": None}]
    accounts = [_acc("b1", 0.1), _acc("b2", 0.2), _acc("ft", 0.95, True, "distillation", 40),
                _acc("d1", 0.9, True, "distillation", 50), _acc("d2", 0.8, True, "distillation", 60)]
    m = evaluate(accounts, labels)
    assert m["auc"] == 1.0 and m["tpr_at_fpr_0.001"] == 1.0
    assert m["fpr_flagged"] == 0.0 and m["negatives"] == 2
    assert m["declared_negatives"] == 1 and m["declared_flagged"] == 1.0
    assert m["tpr_flagged"] == 1.0
    undeclared = [dict(d, purposes=["chat"]) for d in labels]
    m = evaluate(accounts, undeclared)
    assert m["auc"] < 1.0 and m["fpr_flagged"] == pytest.approx(1 / 3) and m["declared_negatives"] == 0
