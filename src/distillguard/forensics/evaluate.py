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
from .formats import read_dataset
from .index import Output, OutputIndex
from .normalize import normalize, tokens
from .trace import VERIFY_THRESHOLD, trace_records

SHARED_DATA = Path("/work/shared/data")
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
        labels.append({"derived": False, "org": None, "request": None, "transforms": []})
    order = list(range(len(dataset)))
    rng.shuffle(order)
    return outputs, [dataset[i] for i in order], [labels[i] for i in order]


def metrics(results: Sequence[dict[str, Any]], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tp = fp = fn = org_ok = req_ok = 0
    for r, lab in zip(results, labels):
        if r["derived"] and lab["derived"]:
            tp += 1
            org_ok += r["org"] == lab["org"]
            req_ok += r["matched_request"] == lab["request"]
        elif r["derived"]:
            fp += 1
        elif lab["derived"]:
            fn += 1
    return {
        "records": len(labels), "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn,
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
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one evaluation; with ``thresholds`` (dev only) metrics per verification threshold."""
    if corpus_dir is None and SHARED_DATA.is_dir():
        corpus_dir = SHARED_DATA
    points = load_points(corpus_dir, split)
    outputs, dataset, labels = build_case(points, n_orgs, seed + (0 if split == "dev" else 1000), limit)
    if log:
        log(f"{split}: {len(outputs)} stored outputs, {len(dataset)} dataset records, "
            f"{sum(lab['derived'] for lab in labels)} derived")
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suspect.jsonl"
        with open(path, "w") as f:
            f.writelines(json.dumps(rec) + "\n" for rec in dataset)
        records = list(read_dataset(path))
    per_threshold: dict[str, Any] = {}
    if thresholds:
        res = trace_records(records, index, threshold=min(thresholds), keep_matches=True)
        scores = {i: m.candidate.score for i, m in res["_matches"].items()}
        for t in thresholds:
            rows = [dict(r, derived=r["derived"] and scores.get(r["index"], 0.0) >= t) for r in res["records"]]
            per_threshold[f"{t:.2f}"] = metrics(rows, labels)
    res = trace_records(records, index)
    m = metrics(res["records"], labels)
    misses = [(lab["transforms"], rec) for r, lab, rec in zip(res["records"], labels, dataset)
              if lab["derived"] and not r["derived"]]
    stored = {o.id: o.answer for o in outputs}
    false_pos = [(rec, r["evidence"], stored[r["matched_request"]]) for r, lab, rec in zip(res["records"], labels, dataset)
                 if r["derived"] and not lab["derived"]]
    return {"split": split, "corpus": str(corpus_dir or "compact"), "threshold": VERIFY_THRESHOLD,
            "index_size": len(outputs), "presidio": presidio_available(), **m,
            "per_threshold": per_threshold, "misses": misses[:5], "false_positives": false_pos[:5]}
