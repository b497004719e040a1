"""Watermark evidence for ``trace``: per record, and aggregated over the whole dataset per org.

One answer of 100 words carries only a few watermark bits; many answers together carry many. Per
record the provider tests every org's keys (Bonferroni over keys) and reports the corrected p-value.
Over the dataset it pools, per org, the slots of every record attributed to that org (by its MinHash
match, or by its own watermark) -- each (context, set) once per pool, so duplicated text adds nothing --
and gives an exact binomial p-value for that org's keys, corrected for orgs x keys tested.

Pooling over *all* records instead would be valid but powerless: the key's choice depends only on the
previous word and the set, so a dataset has few distinct (context, set) pairs and most of them come
from unrelated records. Selecting records by text similarity keeps the null valid (an independent
near-copy of a marked answer has the original, unkeyed variants) up to a small bias: a copy that
happens to share the keyed variants is slightly more similar to the stored answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


from ..watermark import Watermarker
from ..watermark.detect import Position, positions, score
from ..watermark.detect import detect as detect_positions
from .formats import DatasetRecord

RECORD_THRESHOLD = 1e-6  # corrected p-value at which one record alone is attributed to an org
EVIDENCE_P = 1e-3  # corrected p-value from which the watermark is listed as (supporting) evidence


class WatermarkEvidence:
    """An :class:`~distillguard.forensics.trace.Evidence` provider that also pools the dataset."""

    def __init__(self, watermarker: Watermarker, org_ids: Iterable[str],
                 threshold: float = RECORD_THRESHOLD) -> None:
        self.wm = watermarker
        self.orgs = list(dict.fromkeys(org_ids))
        self.keys = [k for o in self.orgs for k in watermarker.keys(o)]
        self.threshold = threshold
        self._pools: dict[str, tuple[set[tuple[str, int]], list[Position], list[int]]] = {}
        self._last: tuple[int, str | None] = (-1, None)

    def __call__(self, record: DatasetRecord, match: Any) -> tuple[list[str], float]:
        if not self.keys:
            return [], 0.0
        text = "\n\n".join(a for _, a in record.pairs)
        pos = positions(text, self.wm.lexicon)
        v = detect_positions(pos, self.keys, self.threshold)
        self._last = (record.index, v.org)
        org = getattr(getattr(getattr(match, "candidate", None), "entry", None), "org", None) or v.org
        if org in self.orgs:
            seen, pooled, recs = self._pools.setdefault(org, (set(), [], []))
            recs.append(record.index)
            for p in pos:
                if (p.context, p.set_id) not in seen:
                    seen.add((p.context, p.set_id))
                    pooled.append(p)
        if v.p_value >= EVIDENCE_P:
            return [], 0.0
        who = f" ({v.org})" if v.org else ""
        return [f"watermark p={v.p_value:.1e}{who}"], 1.0 if v.detected else 0.5

    def org_for(self, record: DatasetRecord) -> str | None:
        """The org the last call attributed ``record`` to on the watermark alone (None: not conclusive)."""
        idx, org = self._last
        return org if idx == record.index else None

    def summary(self) -> dict[str, Any]:
        """Dataset-level verdict per org over the records attributed to it (exact test, corrected)."""
        rows = []
        n_tests = max(1, len(self.keys))
        for org, (_, pooled, recs) in self._pools.items():
            best: tuple[float, float, int] | None = None
            for k in self.wm.keys(org):
                sc = score(pooled, k)
                if best is None or sc.p_value < best[0]:
                    best = (sc.p_value, sc.z, sc.trials)
            assert best is not None
            rows.append({"org": org, "records": len(recs), "p_value": min(1.0, best[0] * n_tests),
                         "z": round(best[1], 3), "tokens_scored": best[2]})
        rows.sort(key=lambda r: (r["p_value"], -r["z"]))
        detected = [r["org"] for r in rows if r["p_value"] < self.threshold]
        return {"detected": bool(detected), "orgs_detected": detected, "orgs": rows}
