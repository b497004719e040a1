"""Quality of a detection report against labels (contracts §1 label lines).

Uses the simulator's metrics module (``distillguard.sim.metrics``: there, negatives are benign *and* evaluation
accounts) when it is installed alongside, otherwise the same quantities computed here (negatives = benign): AUC of
the score (distillation vs benign accounts), TPR at the flag threshold and at ROC points of FPR 1% / 0.1%, the
benign FPR actually flagged, median requests until flagged, ring recall and the evaluation-label accuracy. Benign
accounts that declared fine-tuning are left out of the negatives and counted on their own (``detect.declared``).
"""

from __future__ import annotations

import statistics
from typing import Any

from .declared import declared_of
from .engine import Report


def _tpr_at_fpr(pos: list[float], neg: list[float], fpr: float) -> float:
    """Share of positives scoring above the benign (1 − fpr) quantile (strictly above: ties count as misses)."""
    if not pos or not neg:
        return float("nan")
    s = sorted(neg)
    k = min(len(s) - 1, max(0, int((1.0 - fpr) * len(s))))
    thr = s[k] if fpr * len(s) < 1 else s[k - 1] if k > 0 else s[0]
    return sum(1 for p in pos if p > thr) / len(pos)


def evaluate(report: Report, labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Metrics of ``report`` given ``{org: {"label", "ring"}}``: the simulator's metrics when available."""
    try:
        from ..sim import metrics as sim_metrics
    except ImportError:
        return own_metrics(report, labels)
    out = sim_metrics.evaluate([a.to_json() for a in report.accounts], list(labels.values()))
    out["threshold"] = report.threshold
    out["target_fpr"] = report.target_fpr
    return out


def own_metrics(report: Report, labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The same headline metrics computed here; accounts without a label are ignored."""
    by = {a.org: a for a in report.accounts}
    pos = [by[o].score for o, d in labels.items() if o in by and d.get("label") == "distillation"]
    neg = [by[o].score for o, d in labels.items() if o in by and d.get("label") == "benign" and not declared_of(d)]
    auc = float("nan")
    if pos and neg:
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg))
    distill = [by[o] for o, d in labels.items() if o in by and d.get("label") == "distillation"]
    benign = [by[o] for o, d in labels.items() if o in by and d.get("label") == "benign" and not declared_of(d)]
    declared = [by[o] for o, d in labels.items() if o in by and d.get("label") == "benign" and declared_of(d)]
    evals = [by[o] for o, d in labels.items() if o in by and d.get("label") == "evaluation"]
    ring_members = [by[o] for o, d in labels.items() if o in by and d.get("ring")]
    until = [a.flagged_after for a in distill if a.flagged and a.flagged_after is not None]
    out: dict[str, Any] = {
        "accounts": {"distillation": len(distill), "benign": len(benign), "evaluation": len(evals)},
        "auc": auc,
        "tpr_at_fpr_0.01": _tpr_at_fpr(pos, neg, 0.01),
        "tpr_at_fpr_0.001": _tpr_at_fpr(pos, neg, 0.001),
        "threshold": report.threshold,
        "target_fpr": report.target_fpr,
        "tpr_flagged": sum(a.flagged for a in distill) / len(distill) if distill else float("nan"),
        "fpr_flagged": sum(a.flagged for a in benign) / len(benign) if benign else float("nan"),
        "declared_negatives": len(declared),
        "declared_flagged": sum(a.flagged for a in declared) / len(declared) if declared else float("nan"),
        "median_requests_until_flagged": statistics.median(until) if until else None,
        "ring_recall": sum(a.flagged for a in ring_members) / len(ring_members) if ring_members else float("nan"),
        "evaluation_label_accuracy": (
            sum(a.label == "evaluation" for a in evals) / len(evals) if evals else float("nan")
        ),
        "evaluation_flagged": sum(a.flagged for a in evals) / len(evals) if evals else float("nan"),
    }
    return out


def metrics_table(m: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for a readable table."""
    rows = []
    for k, v in m.items():
        if isinstance(v, (list, dict)) and k not in ("accounts", "median_requests_to_flag"):
            continue
        if isinstance(v, float):
            rows.append((k, f"{v:.4f}"))
        else:
            rows.append((k, str(v)))
    return rows
