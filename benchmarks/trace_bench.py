"""Benchmark of trace: index build rate, then trace time and peak RAM for a large dataset.

Stored outputs are real corpus answers, made unique by a random sentence prefix when more are needed
than the corpus holds; the dataset mixes 10% transformed stored outputs with other answers.

    .venv/bin/python benchmarks/trace_bench.py --index-size 200000 --dataset-size 100000 [--redis URL]
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from pathlib import Path

from distillguard.forensics.adversary import transform
from distillguard.forensics.formats import DatasetRecord, parse_record
from distillguard.forensics.index import Output, OutputIndex
from distillguard.forensics.trace import trace_records
from distillguard.upstreams.corpus import answer_points, iter_corpus

_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]


def _answers() -> list[tuple[str, str]]:
    shared = Path("/work/shared/data")
    out = []
    for rec in iter_corpus(shared if shared.is_dir() else None):
        for ap in answer_points(rec):
            out.append((next((m["content"] for m in reversed(ap.context) if m["role"] == "user"), ""), ap.answer))
    return out


def _unique(rng: random.Random, text: str) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(8)) + ". " + text


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-size", type=int, default=100_000)
    ap.add_argument("--dataset-size", type=int, default=100_000)
    ap.add_argument("--redis", default=None, help="Redis URL: build the index in Redis instead of memory")
    args = ap.parse_args()
    rng = random.Random(1)
    pool = _answers()
    rng.shuffle(pool)
    stored_pool, other_pool = pool[: len(pool) // 2], pool[len(pool) // 2 :]
    outputs = []
    for i in range(args.index_size):
        p, a = stored_pool[i % len(stored_pool)]
        outputs.append(Output(f"req_{i:08d}", f"org_{i % 50:02d}", float(i), p,
                              a if i < len(stored_pool) else _unique(rng, a)))
    index = (OutputIndex.redis(args.redis, prefix=f"dgbench:{rng.getrandbits(32):x}:") if args.redis
             else OutputIndex.memory())
    base = rss_mb()
    t0 = time.perf_counter()
    index.add_outputs(outputs)
    build_s = time.perf_counter() - t0
    after_build = rss_mb()
    del outputs
    records = []
    n_pos = args.dataset_size // 10
    for i in range(args.dataset_size):
        if i < n_pos:
            p, a = stored_pool[rng.randrange(min(len(stored_pool), args.index_size))]
            obj, _ = transform(p, a, rng)
        else:
            p, a = other_pool[i % len(other_pool)]
            obj = {"instruction": p, "output": a if i < len(other_pool) else _unique(rng, a)}
        records.append(DatasetRecord(i, parse_record(obj)[1]))
    t0 = time.perf_counter()
    res = trace_records(records, index)
    trace_s = time.perf_counter() - t0
    print(f"| index backend | {'redis' if args.redis else 'memory'} |")
    print(f"| stored outputs indexed | {len(index)} |")
    print(f"| index build | {build_s:.1f} s ({len(index) / build_s:.0f} outputs/s) |")
    print(f"| RSS after build (max) | {after_build:.0f} MB (start {base:.0f} MB) |")
    print(f"| dataset records traced | {len(records)} |")
    print(f"| trace time | {trace_s:.1f} s ({len(records) / trace_s:.0f} records/s) |")
    print(f"| peak RSS (whole process) | {rss_mb():.0f} MB |")
    print(f"| derived found | {res['summary']['derived']} (of {n_pos} planted) |")


if __name__ == "__main__":
    main()
