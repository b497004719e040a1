"""Watermark overhead per output token on real answers: apply, streaming (small deltas) and detect.

    .venv/bin/python benchmarks/watermark_bench.py [--corpus-dir ../shared/data] [--n 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from distillguard.tokens import get_encoding
from distillguard.upstreams.corpus import iter_corpus
from distillguard.watermark import Watermarker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus-dir", type=Path, default=None)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    texts = []
    for r in iter_corpus(args.corpus_dir):
        if r.lang == "en":
            texts.extend(m["content"] for m in r.messages if m["role"] == "assistant" and len(m["content"]) > 200)
        if len(texts) >= args.n:
            break
    enc = get_encoding("o200k_base")
    pieces = [[enc.decode([t]) for t in enc.encode(x, disallowed_special=())] for x in texts]
    tokens = sum(len(p) for p in pieces)
    wm = Watermarker("bench-secret")
    orgs = [f"org_{i}" for i in range(10)]
    rows = []

    t = time.perf_counter()
    for x in texts:
        wm.apply(x, "org_0")
    rows.append(("apply (whole answer)", time.perf_counter() - t))

    t = time.perf_counter()
    for p in pieces:
        s = wm.stream("org_0")
        for d in p:
            s.feed(d)
        s.flush()
    rows.append(("stream (one delta per token)", time.perf_counter() - t))

    t = time.perf_counter()
    for x in texts:
        wm.detect(x, orgs)
    rows.append(("detect, 10 orgs", time.perf_counter() - t))

    print(f"{len(texts)} answers, {tokens} tokens (o200k_base)")
    print(f"{'operation':32} {'µs/token':>9}  {'target':>7}")
    for name, secs in rows:
        target = "≤ 20" if name.startswith(("apply", "stream")) else ""
        print(f"{name:32} {secs / tokens * 1e6:9.2f}  {target:>7}")


if __name__ == "__main__":
    main()
