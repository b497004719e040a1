"""Trace a suspect dataset to API outputs: which records are derived, from which org and request.

Signals per record (each an :class:`Evidence` provider, so more can be plugged in; the watermark
provider is :class:`.wmevidence.WatermarkEvidence`):

- ``minhash``: near-duplicate match of the record's answer against the output index
  (Jaccard or containment, whichever is higher), robust to PII replacement and reformatting;
- ``prompt``: the record's prompt against the prompt of the matched request.

A record is *derived* when its best candidate passes the verification threshold, judged on distinctive
content (shingles common to many stored outputs count for less, see :mod:`.weights`) and, when the
stored texts are at hand (``originals``), aligns with the stored answer as a copy with local edits
(:mod:`.align`); or when a
provider is conclusive on its own (a detected watermark names the org, without a matched request).
Providers with a ``summary()`` add a dataset-level verdict to the summary (``summary["watermark"]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .align import MAX_GAPS, MIN_BLOCKS, Alignment, align
from .corroborate import Decision, decide
from .entries import batched
from .formats import DatasetRecord, read_dataset
from .index import Candidate, OutputIndex, Scored
from .normalize import caseless, name_words, recase
from .sketch import PROMPT_PERM, Sketch, SketchBatch, jaccard, overlap
from .weights import Weighted, weigh

VERIFY_THRESHOLD = 0.6  # tuned on the dev split (forensics/evaluate.py), never on the test split
MIN_SHINGLES = 8  # answers shorter than this are too generic to attribute
MIN_OVERLAP = 6.0  # estimated shared shingles required
PROMPT_THRESHOLD = 0.5
MIN_DISTINCT = 6.0  # weighted shared shingles required (common text counts for less); tuned on dev
# dev rule: the best precision with recall >= 0.975 over thresholds 0.4-0.7 x distinct 0-30
ALIGN_THRESHOLD = 0.5  # with the stored texts at hand (``originals``) the alignment check decides; tuned on dev
AMBIGUITY_MARGIN, AMBIGUITY_TOP = 0.1, 0.85  # see ``_ambiguous``; chosen on dev seeds 7 and 8
TWIN_JACCARD, TWIN_SLACK = 0.9, 0.05  # two stored answers this similar are one answer served twice


@dataclass
class Match:
    """The best verified match of one dataset record (per answer turn, the best turn wins)."""

    candidate: Candidate
    answer: str
    prompt: str
    sketch: Sketch
    prompt_sketch: Sketch | None = None
    evidence: list[str] = field(default_factory=list)
    confidence: float = 0.0
    weighted: Weighted | None = None  # the match judged on distinctive content (None: no frequencies kept)
    alignment: Alignment | None = None  # the record aligned with the stored text (None: texts not available)
    decision: Decision | None = None  # corroboration of the aligned match (:mod:`.corroborate`)
    ambiguous: bool = False  # another, different stored answer matches about as well (see ``_ambiguous``)

    @property
    def score(self) -> float:
        """The MinHash score, discounted when the shared text is mostly common text."""
        f = 1.0 if self.weighted is None else min(1.0, self.weighted.factor)
        return self.candidate.score * f


class Evidence(Protocol):
    """An extra signal: may add evidence strings and raise the confidence of a record's match."""

    def __call__(self, record: DatasetRecord, match: Match | None) -> tuple[list[str], float]:
        """(evidence strings, probability-like strength in [0, 1]) for this record."""
        ...


def prompt_evidence(index: OutputIndex) -> Evidence:
    """The record's prompt against the matched request's prompt."""

    def ev(record: DatasetRecord, match: Match | None) -> tuple[list[str], float]:
        if match is None or match.prompt_sketch is None or match.prompt_sketch.size == 0:
            return [], 0.0
        e = match.candidate.entry
        if e.psize == 0:
            return [], 0.0
        j = jaccard(np.asarray(match.prompt_sketch.values[:PROMPT_PERM], np.uint32), e.psig)
        if j < PROMPT_THRESHOLD:
            return [], 0.0
        return [f"prompt match {j:.2f}"], j

    return ev


def _prompt_j(m: Match) -> float | None:
    """Estimated Jaccard of the record's prompt and the matched request's prompt (None: either is empty)."""
    e = m.candidate.entry
    if m.prompt_sketch is None or m.prompt_sketch.size == 0 or e.psize == 0:
        return None
    return jaccard(np.asarray(m.prompt_sketch.values[:PROMPT_PERM], np.uint32), e.psig)


def _confidence(score: float, extra: Iterable[float]) -> float:
    """Combine independent strengths as 1 - prod(1 - s); the MinHash score is capped below 1."""
    miss = 1.0 - min(score, 0.99)
    for s in extra:
        miss *= 1.0 - 0.5 * max(0.0, min(s, 1.0))
    return round(1.0 - miss, 4)


def _alone(provider: Evidence, record: DatasetRecord) -> str | None:
    """The org a provider attributes an unmatched record to on its own evidence (e.g. a detected watermark)."""
    org_for = getattr(provider, "org_for", None)
    return org_for(record) if callable(org_for) else None


def _ambiguous(index: OutputIndex, sc: Any) -> np.ndarray:
    """Per scored pair (best two per query, best first): whether the pair is a query's best and its runner-up
    matches about as well (within ``AMBIGUITY_MARGIN``) while the best is no near-exact copy (below
    ``AMBIGUITY_TOP``) and the two stored answers are different texts: less alike than the record is to the
    best (its score less ``TWIN_SLACK``) and below ``TWIN_JACCARD``. One answer served twice (to two orgs,
    each copy with its own watermark variants) is no ambiguity: its two copies are closer to each other than
    a degraded copy of either is to them.

    A copy with local edits is closer to its source than to any other stored answer; a text about equally
    close to several different stored answers is the shape they share (a templated tool reply, a textbook
    snippet), which an independent author writes too.
    """
    n = len(sc.query)
    out = np.zeros(n, bool)
    if n < 2:
        return out
    score = sc.score
    pair = np.flatnonzero(sc.query[1:] == sc.query[:-1])  # i: best, i + 1: runner-up of the same query
    if len(pair) == 0:
        return out
    close = (score[pair + 1] >= score[pair] - AMBIGUITY_MARGIN) & (score[pair] < AMBIGUITY_TOP)
    pair = pair[close]
    if len(pair):
        a, _ = index.entries.sigs(sc.row[pair])
        b, _ = index.entries.sigs(sc.row[pair + 1])
        between = np.count_nonzero(a == b, axis=1) / a.shape[1]
        twin = between >= np.minimum(TWIN_JACCARD, score[pair] - TWIN_SLACK)
        out[pair[~twin]] = True
    return out


def _firsts(query: np.ndarray) -> np.ndarray:
    """Which scored pairs are their query's best (pairs are grouped by query, best first)."""
    if len(query) == 0:
        return np.zeros(0, bool)
    return np.concatenate(([True], query[1:] != query[:-1]))


def _recased(answers: Sequence[str], sk: SketchBatch, sc: Scored, index: OutputIndex,
             fetch: Callable[[list[str]], Mapping[str, str]]) -> tuple[SketchBatch, Scored]:
    """The batch with every case-less answer (all lower case, or all capitals) re-sketched as its best candidate's
    text normalises, and re-scored.

    Normalisation masks capitalised names (PII-like spans, so that desensitized copies still match); a copy
    lower-cased by its dataset builder keeps its names as plain words, so up to one shingle in three no longer
    matches and its alignment has gaps wherever a name was. Case cannot be restored from the text, but the
    first pass nearly always finds the source as the best candidate (595 of 600 lower-cased dev copies): masking
    that candidate's name words in the record (``normalize.recase``) normalises a copy exactly as its source.
    An independent text gains only where it uses the same names, as it would with its own case.
    """
    todo = [q for q, a in enumerate(answers) if sk.sizes[q] >= MIN_SHINGLES and caseless(a)]
    if not todo or len(sc.query) == 0:
        return sk, sc
    first = _firsts(sc.query)
    top = dict(zip(sc.query[first].tolist(), sc.row[first].tolist()))
    pick = [(q, top[q]) for q in todo if q in top]
    if not pick:
        return sk, sc
    ents = {e.row: e for e in index.entries.get_many(sorted({r for _, r in pick}))}
    texts = fetch(sorted({ents[r].id for _, r in pick}))
    qs, new = [], []
    for q, r in pick:
        original = texts.get(ents[r].id)
        names = name_words(original) if original else frozenset()
        if names:
            qs.append(q)
            new.append(recase(answers[q], names))
    if not qs:
        return sk, sc
    sub = index.sketcher.batch(new)
    ssc = index.score(sub.values, sub.sizes, top=2)
    moved = np.asarray(qs, np.int64)
    keep = ~np.isin(sc.query, moved)
    query = np.concatenate([sc.query[keep], moved[ssc.query]])
    order = np.argsort(query, kind="stable")  # grouped by query again, each query's pairs still best first
    merged = Scored(query[order], np.concatenate([sc.row[keep], ssc.row])[order],
                    np.concatenate([sc.jaccard[keep], ssc.jaccard])[order],
                    np.concatenate([sc.containment[keep], ssc.containment])[order])
    return sk.replace(qs, sub), merged


def _verified(c: Candidate, s: Sketch, threshold: float) -> bool:
    if s.size < MIN_SHINGLES or c.score < threshold:
        return False
    return overlap(c.jaccard, s.size, c.entry.size) >= MIN_OVERLAP


def _weighted(index: OutputIndex, s: Sketch, c: Candidate) -> Weighted | None:
    if index.df is None:
        return None
    shared = overlap(c.jaccard, s.size, c.entry.size)
    hv = s.hashes if s.hashes is not None else index.sketcher.shingle_hashes(s.toks or [])
    return weigh(index.sketcher, hv, np.asarray(s.values), c.entry.sig, index.df, shared)


def _distinctive(m: Match, threshold: float, min_distinct: float) -> bool:
    if m.weighted is None:
        return True
    return m.score >= threshold and m.weighted.distinct >= min_distinct


@dataclass
class Matcher:
    """The text matching of one batch of records (sketch, score, verify, align, corroborate): the part of a trace
    whose result depends on nothing but the batch, so batches can be matched in any order or process."""

    index: OutputIndex
    threshold: float
    min_distinct: float
    fetch: Callable[[list[str]], Mapping[str, str]] | None
    align_rule: tuple[float, float]
    corroborate: bool
    wm: Any  # the watermarker of a watermark provider: its org keys tell whether a stored answer carries its mark

    def __call__(self, buf: Sequence[DatasetRecord]) -> dict[int, Match]:
        """Each record's best verified match (by record index; records without one are left out)."""
        index, fetch, threshold = self.index, self.fetch, self.threshold
        turns = [(r, p, a) for r in buf for p, a in r.pairs]
        sk = index.sketcher.batch([a for _, _, a in turns])
        sc = index.score(sk.values, sk.sizes, top=2)  # the best two candidates of every answer turn
        known: dict[str, str] = {}  # stored answers of this batch, each looked up once

        def lookup(ids: list[str]) -> Mapping[str, str]:
            assert fetch is not None
            missing = [i for i in ids if i not in known]
            if missing:
                known.update(fetch(missing))
            return known

        if fetch is not None:
            sk, sc = _recased([a for _, _, a in turns], sk, sc, index, lookup)
        ambiguous = _ambiguous(index, sc)
        first = _firsts(sc.query)
        keep = first & (sk.sizes[sc.query] >= MIN_SHINGLES) & (sc.score >= threshold)
        sc, ambiguous = sc.take(keep), ambiguous[keep]
        by_row = {e.row: e for e in index.entries.get_many(np.unique(sc.row).tolist())}
        verified: list[tuple[DatasetRecord, Match]] = []
        for q, row, j, cont, amb in zip(sc.query.tolist(), sc.row.tolist(), sc.jaccard.tolist(),
                                        sc.containment.tolist(), ambiguous.tolist()):
            r, p, a = turns[q]
            c, s = Candidate(by_row[row], j, cont), sk[q]
            if not _verified(c, s, threshold):
                continue
            m = Match(c, a, p, s, weighted=_weighted(index, s, c), ambiguous=amb)
            if _distinctive(m, threshold, self.min_distinct):
                verified.append((r, m))
        stored: Callable[[str], str | None] | None = None
        if fetch is not None:  # the stored answers of the whole batch in one lookup
            stored = lookup(sorted({m.candidate.entry.id for _, m in verified})).get
        with_prompt = [m for _, m in verified if m.prompt]
        if with_prompt:
            ps = index.sketcher.batch([m.prompt for m in with_prompt])
            for i, m in enumerate(with_prompt):
                m.prompt_sketch = ps[i]
        best: dict[int, Match] = {}
        wm = self.wm
        for r, m in verified:
            if stored is not None:
                original = stored(m.candidate.entry.id)
                if not original:
                    continue
                m.alignment = align(m.answer, original, m.prompt, answer_tokens=m.sketch.toks)
                if self.corroborate:
                    keys = wm.keys(m.candidate.entry.org) if wm is not None and m.candidate.entry.org else ()
                    d = decide(m.alignment, None if m.weighted is None else m.weighted.distinct, _prompt_j(m),
                               m.answer, original, self.align_rule, keys, ambiguous=m.ambiguous,
                               record_prompt=m.prompt)
                    m.decision = d
                    if not d.derived:
                        continue
                elif not m.alignment.copied(*self.align_rule):
                    continue
            if r.index not in best or m.score > best[r.index].score:
                best[r.index] = m
        return best


def trace_records(
    records: Iterable[DatasetRecord],
    index: OutputIndex,
    threshold: float = VERIFY_THRESHOLD,
    min_distinct: float = MIN_DISTINCT,
    evidence: Sequence[Evidence] | None = None,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
    keep_matches: bool = False,
    originals: Callable[[str], str | None] | None = None,
    originals_many: Callable[[list[str]], Mapping[str, str]] | None = None,
    align_threshold: float = ALIGN_THRESHOLD,
    align_rule: tuple[float, float] = (MAX_GAPS, MIN_BLOCKS),
    corroborate: bool = True,
    workers: int = 1,
    worker_init: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The contract's ``{"records": [...], "summary": {...}}`` for the given dataset records.

    With ``keep_matches`` the result also has ``"_matches"``: index → :class:`Match` (for the report).
    With ``originals`` (request id → the stored answer's text, e.g. from the ledger) a candidate from
    ``align_threshold`` up is verified by aligning the record with that text (:mod:`.align`), which
    tells copies with local edits from independently written answers that share much of their text
    (``align_rule``: the largest unaligned share and the smallest share in aligned runs).
    ``originals_many`` (request ids → {id: stored answer}) does the same with one lookup per batch.
    With ``corroborate`` an aligned match that carries little information needs corroboration by the
    prompt or the watermark slots (:mod:`.corroborate`); without, alignment alone decides.

    ``workers`` > 1 matches batches in that many forked processes (:mod:`.workers`); the result is the same.
    ``worker_init`` runs first in each of them: lookups that hold a connection must open their own there
    (an SQLAlchemy engine: ``engine.dispose(close=False)``).
    """
    if originals is not None or originals_many is not None:
        threshold = align_threshold
    providers = list(evidence) if evidence is not None else [prompt_evidence(index)]
    fetch: Callable[[list[str]], Mapping[str, str]] | None = originals_many
    if fetch is None and originals is not None:
        one = originals
        fetch = lambda ids: {i: t for i in ids if (t := one(i))}  # noqa: E731
    wm = next((w for p in providers if (w := getattr(p, "wm", None)) is not None), None)
    matcher = Matcher(index, threshold, min_distinct, fetch, align_rule, corroborate, wm)
    out: list[dict[str, Any]] = []
    matches: dict[int, Match] = {}
    total = 0
    if workers > 1:
        from .workers import match_in_workers

        batches = match_in_workers(matcher, records, batch, workers, providers, worker_init)
    else:
        batches = ((buf, matcher(buf)) for buf in batched(records, batch))
    for buf, best in batches:
        _assemble(buf, best, providers, out, matches)
        total += len(buf)
        if progress:
            progress(total)
    result: dict[str, Any] = {"records": out, "summary": summarize(out, len(index))}
    for prov in providers:
        pooled = getattr(prov, "summary", None)
        if callable(pooled):
            result["summary"]["watermark"] = pooled()
    if keep_matches:
        result["_matches"] = matches
    return result


def _assemble(buf: Sequence[DatasetRecord], best: Mapping[int, Match], providers: Sequence[Evidence],
              out: list[dict[str, Any]], matches: dict[int, Match]) -> None:
    """The output rows of one matched batch, in record order, with every provider's evidence (providers keep
    dataset-wide state, e.g. the watermark pools, so batches come here in order, in one process)."""
    for r in buf:
        m = best.get(r.index)
        strengths: list[float] = []
        extra: list[str] = []
        for prov in providers:
            ev, strength = prov(r, m)
            extra += ev
            if ev:
                strengths.append(strength)
        if m is None:
            org = next((o for prov in providers if (o := _alone(prov, r))), None)
            out.append({"index": r.index, "derived": org is not None, "confidence": 0.99 if org else 0.0,
                        "org": org, "matched_request": None, "evidence": extra})
            continue
        c = m.candidate
        kind = "containment" if c.containment > c.jaccard else "jaccard"
        m.evidence = [f"minhash {c.score:.2f} ({kind})"] + extra
        if m.weighted is not None:
            m.evidence.insert(1, f"distinctive {m.weighted.distinct:.0f} shingles, "
                                 f"weight {min(1.0, m.weighted.factor):.2f}")
        if m.alignment is not None:
            al = m.alignment
            m.evidence.insert(1, f"aligned {al.blocks:.0%} in runs, {al.gaps:.0%} unaligned, "
                                   f"{al.omitted:.0%} of the stored stretch left out, {al.novel} novel shingles")
        if m.decision is not None:
            sa = m.decision.slots
            slots = f"; watermark slots {sa.agree}/{sa.shared} agree" if sa is not None and sa.shared else ""
            m.evidence.insert(1, f"{m.decision.reason}{slots}")
        m.confidence = _confidence(m.score, strengths)
        matches[r.index] = m
        out.append({"index": r.index, "derived": True, "confidence": m.confidence, "org": c.entry.org,
                    "matched_request": c.entry.id, "evidence": m.evidence})


def summarize(records: Sequence[dict[str, Any]], index_size: int) -> dict[str, Any]:
    derived = [r for r in records if r["derived"]]
    orgs = Counter(r["org"] or "unknown" for r in derived)
    return {
        "records": len(records),
        "derived": len(derived),
        "derived_share": round(len(derived) / len(records), 4) if records else 0.0,
        "orgs": [{"org": o, "records": n} for o, n in orgs.most_common()],
        "requests_matched": len({r["matched_request"] for r in derived}),
        "index_size": index_size,
    }


def trace(dataset_path: str | Path, index: OutputIndex, **kwargs: Any) -> dict[str, Any]:
    """Read a dataset file (any supported format) and trace it against the index."""
    return trace_records(read_dataset(dataset_path), index, **kwargs)
