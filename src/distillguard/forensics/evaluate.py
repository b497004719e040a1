"""Evaluation of ``trace`` on labelled data: recall, precision and correct-org rate.

Per split (dev for tuning, test for reporting; split by conversation so one chat never lands on both
sides): half of the split's real answers become stored outputs attributed to synthetic orgs (the
index), the other half are unrelated records. The dataset mixes unrelated records with adversarially
transformed stored outputs (10% of the records, see :mod:`.adversary`), shuffled, written as one
JSONL file of mixed training formats and read back through :func:`.formats.read_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..upstreams.corpus import answer_points, iter_corpus
from .adversary import as_format, presidio_available, transform
from .align import MAX_GAPS, MIN_BLOCKS
from .formats import read_dataset
from .index import Output, OutputIndex
from .normalize import normalize, tokens
from .trace import (
    ALIGN_THRESHOLD,
    MIN_DISTINCT,
    VERIFY_THRESHOLD,
    Evidence,
    _verified,
    prompt_evidence,
    trace_records,
)
from .wmevidence import WatermarkEvidence

SHARED_DATA = Path("/work/shared/data")
EVAL_SECRET = "distillguard-trace-eval"  # the evaluation's own watermark secret (stored answers are marked)
DUP_CONTAINMENT = 0.8  # an unrelated answer with this share of its shingles in one stored answer is a copy
MIN_POSITIVE_WORDS = 20  # shorter answers ("Yes.", a number) cannot be attributed by their text


@dataclass(frozen=True, slots=True)
class Point:
    group: str
    prompt: str
    answer: str


def _group(record_id: str) -> str:
    return record_id.split("_")[0] if record_id.startswith("sharegpt") else record_id


def split_of(group: str) -> str:
    return "dev" if hashlib.blake2b(group.encode(), digest_size=2).digest()[0] % 2 == 0 else "test"


def load_points(corpus_dir: Path | None, split: str) -> list[Point]:
    """Answer points of one split, deduplicated by normalised answer."""
    seen: set[str] = set()
    out: list[Point] = []
    for rec in iter_corpus(corpus_dir):
        g = _group(rec.id)
        if split_of(g) != split:
            continue
        for ap in answer_points(rec):
            key = normalize(ap.answer)
            if key in seen:
                continue
            seen.add(key)
            prompt = next((m["content"] for m in reversed(ap.context) if m["role"] == "user"), "")
            out.append(Point(g, prompt, ap.answer))
    return out


def build_case(points: Sequence[Point], n_orgs: int, seed: int, limit: int | None = None) -> tuple[
        list[Output], list[dict[str, Any]], list[dict[str, Any]]]:
    """(stored outputs, dataset records, labels) for one split."""
    rng = random.Random(seed)
    groups = sorted({p.group for p in points})
    rng.shuffle(groups)
    stored_groups = set(groups[: len(groups) // 2])  # one conversation is stored or unrelated, never both
    pts = list(points)
    rng.shuffle(pts)
    if limit:
        pts = pts[:limit]
    stored_pts = [p for p in pts if p.group in stored_groups]
    other = [p for p in pts if p.group not in stored_groups]
    outputs = [Output(f"req_{seed}_{i:07d}", f"org_{rng.randrange(n_orgs):02d}", 1.7e9 + i, p.prompt, p.answer)
               for i, p in enumerate(stored_pts)]
    eligible = [o for o in outputs if len(tokens(o.answer)) >= MIN_POSITIVE_WORDS]
    n_pos = min(len(eligible), len(other) // 9)
    dataset: list[dict[str, Any]] = []
    labels: list[dict[str, Any]] = []
    for o in rng.sample(eligible, n_pos):
        rec, applied = transform(o.prompt, o.answer, rng)
        dataset.append(rec)
        labels.append({"derived": True, "org": o.org, "request": o.id, "transforms": applied})
    for p in other:
        dataset.append(as_format(p.prompt, p.answer, rng.choice(("alpaca", "sharegpt", "openai", "text"))))
        labels.append({"derived": False, "org": None, "request": None, "transforms": [], "text": p.answer})
    order = list(range(len(dataset)))
    rng.shuffle(order)
    return outputs, [dataset[i] for i in order], [labels[i] for i in order]


def near_copies(labels: list[dict[str, Any]], index: OutputIndex, originals: dict[str, str],
                containment_min: float = DUP_CONTAINMENT) -> tuple[int, int]:
    """Mark unrelated records whose answer is itself a near-copy of a stored output (``label["dup"]``).

    Content-based, on the original (unwatermarked) texts and exact normalised shingle sets: a copy when
    at least ``containment_min`` of the record's shingles are in one stored answer (among its LSH
    candidates). Such a pair is no valid negative: the same text exists on both sides of the split (the
    same standard code in two corpora, a templated tool answer, a canned reply). Returns (copies, how
    many of the negatives the unweighted verifier alone would have matched) for the report.
    """
    neg = [lab for lab in labels if not lab["derived"]]
    sk = index.sketcher
    sketches = [sk.sketch(lab["text"]) for lab in neg]
    copies = verifier = 0
    for lab, s, cands in zip(neg, sketches, index.candidates(sketches)):
        lab["dup"] = False
        if cands and _verified(cands[0], s, VERIFY_THRESHOLD):
            verifier += 1
        mine = sk.shingle_set(lab["text"])
        for c in cands[:3]:
            if mine and len(mine & sk.shingle_set(originals[c.entry.id])) >= containment_min * len(mine):
                lab["dup"] = True
                copies += 1
                break
    return copies, verifier


def metrics(results: Sequence[dict[str, Any]], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tp = fp = fn = org_ok = req_ok = 0
    for r, lab in zip(results, labels):
        if lab.get("dup"):
            continue  # not a valid negative (see near_copies)
        if r["derived"] and lab["derived"]:
            tp += 1
            org_ok += r["org"] == lab["org"]
            req_ok += r["matched_request"] == lab["request"]
        elif r["derived"]:
            fp += 1
        elif lab["derived"]:
            fn += 1
    return {
        "records": sum(not lab.get("dup") for lab in labels), "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "correct_org": org_ok / tp if tp else 0.0,
        "correct_request": req_ok / tp if tp else 0.0,
    }


def evaluate(
    split: str = "test",
    corpus_dir: Path | None = None,
    n_orgs: int = 20,
    seed: int = 7,
    limit: int | None = None,
    thresholds: Sequence[float] | None = None,
    distincts: Sequence[float] | None = None,
    gaps: Sequence[float] | None = None,
    watermark: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one evaluation; with ``thresholds``/``distincts``/``gaps`` (dev only) metrics per setting.

    The verifier aligns matches with the stored texts (``originals``, see :mod:`.align`); the metrics of
    the verifier without that check are reported as ``without_alignment``.

    With ``watermark`` the stored outputs are watermarked with their org's key (as the gateway does)
    and the watermark evidence provider runs; the summary gets the dataset-level watermark verdict.
    """
    from ..watermark import Watermarker

    if corpus_dir is None and SHARED_DATA.is_dir():
        corpus_dir = SHARED_DATA
    points = load_points(corpus_dir, split)
    outputs, dataset, labels = build_case(points, n_orgs, seed + (0 if split == "dev" else 1000), limit)
    originals = {o.id: o.answer for o in outputs}
    wm = Watermarker(EVAL_SECRET) if watermark else None
    orgs = sorted({o.org for o in outputs if o.org})
    if wm is not None:  # the adversary harvested marked answers: rebuild the positives from marked text
        outputs, dataset = _marked_case(outputs, dataset, labels, wm, seed)
    if log:
        log(f"{split}: {len(outputs)} stored outputs, {len(dataset)} dataset records, "
            f"{sum(lab['derived'] for lab in labels)} derived")
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    copies, verifier_hits = near_copies(labels, index, originals)
    if log:
        log(f"{copies} unrelated records are near-copies of stored outputs (dropped as negatives); "
            f"the unweighted verifier alone matches {verifier_hits}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suspect.jsonl"
        with open(path, "w") as f:
            f.writelines(json.dumps(rec) + "\n" for rec in dataset)
        records = list(read_dataset(path))

    def providers() -> list[Evidence]:
        out: list[Evidence] = [prompt_evidence(index)]
        if wm is not None:
            out.append(WatermarkEvidence(wm, orgs))
        return out

    stored = {o.id: o.answer for o in outputs}  # what the ledger holds: the (marked) answers served
    per_threshold: dict[str, Any] = {}
    if thresholds or distincts or gaps:
        res = trace_records(records, index, min_distinct=0.0, keep_matches=True, evidence=[prompt_evidence(index)],
                            originals=stored.get, align_threshold=min(thresholds or [ALIGN_THRESHOLD]),
                            align_rule=(1.0, 0.0), corroborate=False)
        ms = res["_matches"]

        def keep(m: Any, t: float, d: float, g: float) -> bool:
            al = m.alignment
            return (m.score >= t and (m.weighted is None or m.weighted.distinct >= d)
                    and al is not None and al.copied(g, MIN_BLOCKS))

        for t in thresholds or [ALIGN_THRESHOLD]:
            for d in distincts or [MIN_DISTINCT]:
                for g in gaps or [MAX_GAPS]:
                    rows = [dict(r, derived=r["derived"] and keep(ms[r["index"]], t, d, g)) for r in res["records"]]
                    per_threshold[f"{t:.2f}/{d:g}/{g:g}"] = metrics(rows, labels)
    res = trace_records(records, index, evidence=providers(), originals=stored.get)
    m = metrics(res["records"], labels)
    without_alignment = metrics(trace_records(records, index, evidence=[])["records"], labels)
    unweighted = metrics(_unweighted(records, index), labels)
    misses = [(lab["transforms"], rec) for r, lab, rec in zip(res["records"], labels, dataset)
              if lab["derived"] and not r["derived"]]
    false_pos = [(rec, r["evidence"], stored.get(r["matched_request"] or "", "")) for r, lab, rec
                 in zip(res["records"], labels, dataset) if r["derived"] and not lab["derived"] and not lab.get("dup")]
    wm_only = sum(1 for r, lab in zip(res["records"], labels) if r["derived"] and r["matched_request"] is None
                  and lab["derived"])
    return {"split": split, "corpus": str(corpus_dir or "compact"), "threshold": ALIGN_THRESHOLD, "max_gaps": MAX_GAPS, "min_blocks": MIN_BLOCKS,
            "min_distinct": MIN_DISTINCT, "index_size": len(outputs), "presidio": presidio_available(),
            "watermark": watermark, "dropped_negatives": copies, "verifier_matched_negatives": verifier_hits,
            **m, "found_by_watermark_only": wm_only,
            "unweighted": unweighted, "without_alignment": without_alignment, "dataset_watermark": res["summary"].get("watermark"),
            "per_threshold": per_threshold, "misses": misses[:5], "false_positives": false_pos[:5]}


def _unweighted(records: Sequence[Any], index: OutputIndex) -> list[dict[str, Any]]:
    """Trace without the common-text discount (the previous verifier), MinHash evidence only."""
    df, index.df = index.df, None
    try:
        return trace_records(records, index, evidence=[])["records"]
    finally:
        index.df = df


def _marked_case(outputs: list[Output], dataset: list[dict[str, Any]], labels: list[dict[str, Any]],
                 wm: Any, seed: int) -> tuple[list[Output], list[dict[str, Any]]]:
    """Stored outputs watermarked with their org's key; positives re-derived from the marked answers."""
    marked = [Output(o.id, o.org, o.ts, o.prompt, wm.apply(o.answer, o.org)) for o in outputs]
    by_id = {o.id: o for o in marked}
    rng = random.Random(seed + 17)
    new = list(dataset)
    for i, lab in enumerate(labels):
        if lab["derived"]:
            o = by_id[lab["request"]]
            new[i], lab["transforms"] = transform(o.prompt, o.answer, rng)
    return marked, new
