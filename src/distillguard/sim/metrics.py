"""Evaluation of a detector's per-account output against simulator labels.

Inputs are the ``accounts`` of ``detect --json`` (``org``, ``score``, ``flagged``, ``label``, ``ring``,
``requests`` and optionally ``flagged_after`` = requests of the account seen when it was first flagged)
and the labels file (``org``, ``label``, ``ring``, optional ``kind``, ``scenario``).

Positives are ``distillation`` accounts; negatives are every other labelled account (``benign`` and
``evaluation``: flagging an evaluator is a false positive) that did not declare fine-tuning. A negative whose
labels line declares fine-tuning (``purposes``) builds training data for the provider's own models, which looks like
distillation in traffic and is checked against its fine-tuning uploads instead (``detect.declared``): it is left
out of AUC, TPR at FPR and the false-positive rate, and its flagged share is reported on its own
(``declared_flagged``). Accounts without a label are ignored; labelled accounts the detector did not report count
with score 0, not flagged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..detect.declared import declared_of

FPR_POINTS = (0.01, 0.001)


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled account joined with the detector's verdict."""

    org: str
    label: str
    ring: str | None
    kind: str
    scenario: str
    score: float
    flagged: bool
    predicted: str | None
    flagged_after: int | None
    requests: int | None
    declared: bool = False  # the account declared fine-tuning (``detect.declared``)

    @property
    def positive(self) -> bool:
        return self.label == "distillation"

    @property
    def scored(self) -> bool:
        """Counts in AUC, TPR at FPR and the false-positive rate: every positive, and the negatives that did not
        declare fine-tuning."""
        return self.positive or not self.declared


def join(accounts: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Labelled accounts with their verdicts, in label order."""
    by_org = {str(a["org"]): a for a in accounts}
    rows = []
    for lab in labels:
        org = str(lab["org"])
        a = by_org.get(org, {})
        fa = a.get("flagged_after")
        rows.append(Row(org=org, label=str(lab["label"]), ring=lab.get("ring"), kind=str(lab.get("kind") or lab["label"]),
                        scenario=str(lab.get("scenario") or "all"), score=float(a.get("score") or 0.0),
                        flagged=bool(a.get("flagged", False)), predicted=a.get("label"),
                        flagged_after=int(fa) if fa is not None else None,
                        requests=int(a["requests"]) if a.get("requests") is not None else None,
                        declared=declared_of(lab)))
    return rows


def roc(rows: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) over the scored rows; empty arrays when a class is missing."""
    rows = [r for r in rows if r.scored]
    y = np.array([r.positive for r in rows], dtype=bool)
    if y.all() or not y.any():
        return np.zeros(0), np.zeros(0), np.zeros(0)
    s = np.array([r.score for r in rows], dtype=float)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, thr


def auc(rows: list[Row]) -> float | None:
    rows = [r for r in rows if r.scored]
    y = [r.positive for r in rows]
    if all(y) or not any(y):
        return None
    return float(roc_auc_score(y, [r.score for r in rows]))


def tpr_at_fpr(rows: list[Row], max_fpr: float) -> float | None:
    """The best TPR of any score threshold whose FPR is at most ``max_fpr`` (a threshold is a score
    value: accounts scoring >= it are positive, so ties cannot be split)."""
    fpr, tpr, _ = roc(rows)
    if len(fpr) == 0:
        return None
    ok = fpr <= max_fpr + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def _median(xs: list[int]) -> float | None:
    return float(statistics.median(xs)) if xs else None


def ring_recall(rows: list[Row]) -> dict[str, Any]:
    """Share of ring members flagged, overall and per ring."""
    rings: dict[str, list[Row]] = {}
    for r in rows:
        if r.ring:
            rings.setdefault(r.ring, []).append(r)
    per = {k: sum(m.flagged for m in v) / len(v) for k, v in sorted(rings.items())}
    members = sum(len(v) for v in rings.values())
    overall = sum(m.flagged for v in rings.values() for m in v) / members if members else None
    return {"overall": overall, "per_ring": per, "members": members}


def _flag_rate(rows: list[Row]) -> float | None:
    return sum(r.flagged for r in rows) / len(rows) if rows else None


def per_kind(rows: list[Row]) -> list[dict[str, Any]]:
    """One line per tenant kind: accounts, flagged share, median score, median requests until flagged."""
    kinds: dict[str, list[Row]] = {}
    for r in rows:
        kinds.setdefault(r.kind, []).append(r)
    out = []
    for kind, rs in sorted(kinds.items()):
        out.append({"kind": kind, "label": rs[0].label, "accounts": len(rs), "flagged": _flag_rate(rs),
                    "median_score": float(statistics.median(r.score for r in rs)),
                    "median_requests_to_flag": _median([r.flagged_after for r in rs
                                                        if r.flagged and r.flagged_after is not None]),
                    "label_accuracy": sum(r.predicted == r.label for r in rs) / len(rs)})
    return out


def summarise(rows: list[Row]) -> dict[str, Any]:
    """The headline metrics of one set of rows."""
    pos = [r for r in rows if r.positive]
    neg = [r for r in rows if not r.positive and not r.declared]
    declared = [r for r in rows if not r.positive and r.declared]
    evals = [r for r in rows if r.label == "evaluation"]
    out: dict[str, Any] = {"accounts": len(rows), "positives": len(pos), "negatives": len(neg), "auc": auc(rows)}
    for p in FPR_POINTS:
        out[f"tpr_at_fpr_{p:g}"] = tpr_at_fpr(rows, p)
    out["tpr_flagged"] = _flag_rate(pos)
    out["fpr_flagged"] = _flag_rate(neg)
    out["declared_negatives"] = len(declared)
    out["declared_flagged"] = _flag_rate(declared)
    out["ring_recall"] = ring_recall(rows)["overall"]
    out["evaluation_label_accuracy"] = (sum(r.predicted == "evaluation" for r in evals) / len(evals)) if evals else None
    med: dict[str, float | None] = {}
    for r in pos:
        med.setdefault(r.kind, None)
    for kind in med:
        med[kind] = _median([r.flagged_after for r in pos if r.kind == kind and r.flagged
                             and r.flagged_after is not None])
    out["median_requests_to_flag"] = med
    return out


def evaluate(accounts: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Headline metrics, per-kind and per-scenario tables, ring recall (``metrics`` of ``detect --json``)."""
    rows = join(accounts, labels)
    out = summarise(rows)
    out["rings"] = ring_recall(rows)
    out["per_kind"] = per_kind(rows)
    scen: dict[str, list[Row]] = {}
    for r in rows:
        scen.setdefault(r.scenario, []).append(r)
    out["per_scenario"] = [{"scenario": k, **{m: v for m, v in summarise(v).items() if m != "median_requests_to_flag"}}
                           for k, v in sorted(scen.items())]
    return out


def fmt(v: Any) -> str:
    """A metric value for a table cell."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4f}" if v < 10 else f"{v:.0f}"
    return str(v)
