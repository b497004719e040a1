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

Cost: finding a text's watermark slots (``positions``) takes ~0.5 ms, too much for every record of
a 100k dataset. Every skip below is exact, from an upper bound on the fair bits a text can carry (each
occurrence of a lexicon phrase counts the bits of its set; the walker finds a subset of these):

- a record with no text match is scanned only if its bound could reach the record threshold (to be
  attributed on its own, at least log2(keys / threshold) bits are needed). The bound comes in two
  steps: every phrase occurrence (``max_bits``, one regex pass); where that could reach, each distinct
  (previous chunk, set) once, as ``positions`` counts them (``distinct_bits``, a pass over the chunks);
- a matched record is scanned to add its slots to its org's pool (until the pool holds ``POOL_BITS``)
  and, for its own evidence, only if its bound could reach ``EVIDENCE_P``;
- the per-key test runs only when the scanned bits could reach ``EVIDENCE_P``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from ..watermark import Watermarker
from ..watermark.detect import Position, score
from ..watermark.detect import detect as detect_positions
from ..watermark.scan import WORD_RE
from ..watermark.walker import norm_word
from .corroborate import text_positions
from .formats import DatasetRecord

RECORD_THRESHOLD = 1e-6  # corrected p-value at which one record alone is attributed to an org
EVIDENCE_P = 1e-3  # corrected p-value from which the watermark is listed as (supporting) evidence
POOL_BITS = 1000  # an org's pool stops growing here (at ~1,000 fair bits its p-value is far below any threshold)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")  # the walker's word core (scan.WORD_RE), lowercased


def score_hits(pos: list[Position], key: Any) -> int:
    """Fair-bit hits of ``key`` on the slots, counted as ``watermark.detect.score`` counts them."""
    hits = 0
    for p in pos:
        g = key.choice(p.context, p.set_id, p.size)
        if p.size == 2:
            hits += g == p.index
        else:
            hits += ((g ^ p.index) & 1 == 0) + ((g ^ p.index) & 2 == 0)
    return hits


def _org_of(match: Any) -> str | None:
    return getattr(getattr(getattr(match, "candidate", None), "entry", None), "org", None)


class WatermarkEvidence:
    """An :class:`~distillguard.forensics.trace.Evidence` provider that also pools the dataset."""

    def __init__(self, watermarker: Watermarker, org_ids: Iterable[str],
                 threshold: float = RECORD_THRESHOLD) -> None:
        self.wm = watermarker
        self.orgs = list(dict.fromkeys(org_ids))
        self.keys = [k for o in self.orgs for k in watermarker.keys(o)]
        self.threshold = threshold
        self._pools: dict[str, tuple[set[tuple[str, int]], list[Position], list[int]]] = {}
        self._bits: dict[str, int] = {}
        self._last: tuple[int, str | None] = (-1, None)
        self._prepared: dict[int, Any] = {}
        lex = watermarker.lexicon
        self._one = {ph[0]: lex.sets[s].bits for ph, (s, _) in lex.phrases.items() if len(ph) == 1}
        self._two = {ph: lex.sets[s].bits for ph, (s, _) in lex.phrases.items() if len(ph) == 2}
        self._two_first = frozenset(ph[0] for ph in self._two)
        n = max(1, len(self.keys))
        # fewest fair bits with which a corrected p-value can get below ...
        self._need_record = math.floor(math.log2(n / threshold)) + 1  # ... the record threshold
        self._need_evidence = math.floor(math.log2(n / EVIDENCE_P)) + 1  # ... the evidence level

    def max_bits(self, text: str) -> int:
        """An upper bound on the fair bits of ``text``: every lexicon phrase occurrence, with its set's bits."""
        words = _WORD.findall(text.lower().replace("’", "'"))
        b = sum(map(self._one.get, words, [0] * len(words)))
        if self._two:
            first = self._two_first
            b += sum(self._two.get((words[i], words[i + 1]), 0) for i in range(len(words) - 1) if words[i] in first)
        return b

    def distinct_bits(self, text: str) -> int:
        """A tighter bound than ``max_bits``, still never below the bits ``positions`` finds.

        The walker reads whitespace-separated chunks; a slot's words are whole chunks of one plain word
        (``WORD_RE``), and its context is the previous chunk (``norm_word``), since detection rewrites
        nothing. ``positions`` keeps each (context, set) once, so each is counted once here too; the
        protection and placement rules, which only remove slots, are left out."""
        phrases = self.wm.lexicon.phrases
        chunks = text.split()
        words = [(m.group(2).lower().replace("’", "'") if (m := WORD_RE.match(c)) else "") for c in chunks]
        seen: set[tuple[str, int]] = set()
        b = 0
        for i, w in enumerate(words):
            if not w:
                continue
            hits = [phrases.get((w,))]
            if i + 1 < len(words) and w in self._two_first:
                hits.append(phrases.get((w, words[i + 1])))
            for hit in hits:
                if hit is not None:
                    key = (norm_word(chunks[i - 1]) if i else "", hit[0])
                    if key not in seen:
                        seen.add(key)
                        b += self.wm.lexicon.sets[hit[0]].bits
        return b

    def _could_reach(self, pos: list[Position], bits: int) -> bool:
        """Whether the best key's exact binomial tail, corrected for all keys, can get below ``EVIDENCE_P``.

        The p-value falls with the hits, so the key with the most hits decides; counting hits is cheap,
        the exact test over every key is not (it then runs in ``detect``)."""
        best = max(score_hits(pos, k) for k in self.keys)
        tail = sum(math.comb(bits, i) for i in range(best, bits + 1)) / 2.0**bits
        return tail * len(self.keys) < EVIDENCE_P

    def _bound(self, text: str, need: int) -> int:
        """``max_bits``, or where that reaches ``need`` the tighter ``distinct_bits``: below ``need`` exactly
        when the text's slots cannot reach it."""
        b = self.max_bits(text)
        return b if b < need else self.distinct_bits(text)

    def prepare(self, record: DatasetRecord, match: Any) -> tuple[int, tuple[Position, ...] | None] | None:
        """What ``__call__`` may need of this record, computed ahead (in a trace worker, see :mod:`.workers`):
        its bit bound and, unless the bound rules the scan out whether or not the org's pool is full, its slots."""
        if not self.keys:
            return None
        text = "\n\n".join(a for _, a in record.pairs)
        need = self._need_record if match is None else self._need_evidence
        bound = self._bound(text, need)
        pooled = match is not None and _org_of(match) in self.orgs
        return bound, (text_positions(text, self.wm.lexicon) if bound >= need or pooled else None)

    def accept(self, prepared: dict[int, Any]) -> None:
        """``prepare``'s results by record index, used (once) by the calls for those records."""
        self._prepared.update(prepared)

    def __call__(self, record: DatasetRecord, match: Any) -> tuple[list[str], float]:
        self._last = (record.index, None)
        ahead = self._prepared.pop(record.index, None)
        if not self.keys:
            return [], 0.0
        text = "\n\n".join(a for _, a in record.pairs)
        morg = _org_of(match)
        pooling = morg in self.orgs and self._bits.get(morg, 0) < POOL_BITS
        if match is None or not pooling:
            need = self._need_record if match is None else self._need_evidence
            if (ahead[0] if ahead is not None else self._bound(text, need)) < need:
                if morg in self.orgs:
                    self._pools.setdefault(morg, (set(), [], []))[2].append(record.index)
                return [], 0.0
        pos = list(ahead[1] if ahead is not None and ahead[1] is not None else text_positions(text, self.wm.lexicon))
        bits = sum(1 if p.size == 2 else 2 for p in pos)
        if bits >= self._need_evidence and self._could_reach(pos, bits):
            v = detect_positions(pos, self.keys, self.threshold)
            p_value, vorg, detected = v.p_value, v.org, v.detected
        else:
            p_value, vorg, detected = 1.0, None, False
        self._last = (record.index, vorg)
        org = morg or vorg
        if org in self.orgs:
            seen, pooled, recs = self._pools.setdefault(org, (set(), [], []))
            recs.append(record.index)
            if self._bits.get(org, 0) < POOL_BITS:
                for p in pos:
                    if (p.context, p.set_id) not in seen:
                        seen.add((p.context, p.set_id))
                        pooled.append(p)
                        self._bits[org] = self._bits.get(org, 0) + (1 if p.size == 2 else 2)
        if p_value >= EVIDENCE_P:
            return [], 0.0
        who = f" ({vorg})" if vorg else ""
        return [f"watermark p={p_value:.1e}{who}"], 1.0 if detected else 0.5

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
