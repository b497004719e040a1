"""Offline simulator throughput: records per minute for a scenario, with the replay index already cached.

    .venv/bin/python benchmarks/sim_bench.py [--scenario standard] [--seed 0] [--workers N] [--corpus-dir DIR | --compact]

Uses the full corpus at ../shared/data when present (else the compact corpus shipped in the package);
the replay index is built (or loaded) before the clock starts, as `simulate` does on a warm DG_HOME.
Writes to temporary files. Prints a table. Target (issue 5): >= 100k records/minute on this machine.
The load average is printed too: other processes on a 2-core machine slow this down directly.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from distillguard.sim import scenarios
from distillguard.sim.answers import Answerer
from distillguard.sim.corpus import SimCorpus
from distillguard.sim.generate import generate

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="standard")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="test")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--corpus-dir", type=Path, default=SHARED if SHARED.is_dir() else None)
    ap.add_argument("--compact", action="store_true", help="use the compact corpus shipped in the package")
    args = ap.parse_args()
    if args.compact:
        args.corpus_dir = None
    cache = Path(tempfile.gettempdir()) / "distillguard-cache"
    t = time.perf_counter()
    _ = Answerer(args.corpus_dir, cache).replay.index  # warm: build or load the replay index
    corpus = SimCorpus(args.corpus_dir, args.split)
    setup = time.perf_counter() - t
    load0 = os.getloadavg()[0]
    cpu0 = os.times()
    with tempfile.TemporaryDirectory() as tmp:
        with open(Path(tmp) / "t.jsonl", "wb") as out, open(Path(tmp) / "l.jsonl", "wb") as lab:
            t = time.perf_counter()
            s = generate(scenarios.get(args.scenario), args.seed, out, lab, split=args.split,
                         corpus_dir=args.corpus_dir, cache_dir=cache, workers=args.workers, corpus=corpus)
            wall = time.perf_counter() - t
        size = (Path(tmp) / "t.jsonl").stat().st_size
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.children_user - cpu0.children_user) + \
          (cpu1.system - cpu0.system) + (cpu1.children_system - cpu0.children_system)
    rows = [
        ("scenario / split", f"{s.scenario} / {s.split} (seed {s.seed})"),
        ("corpus", str(args.corpus_dir or "compact (package)")),
        ("accounts", f"{s.accounts}  {s.accounts_by_label}"),
        ("records", f"{s.records}  {s.by_label}"),
        ("answers exact / replayed (nearest)", f"{s.answers_exact} / {s.answers_replayed}"),
        ("output size", f"{size / 1e6:.1f} MB"),
        ("setup (index + corpus) s", f"{setup:.1f}"),
        ("generation wall s", f"{wall:.1f}"),
        ("records / minute (wall)", f"{s.records / wall * 60:,.0f}   (target >= 100,000)"),
        ("records / CPU-second", f"{s.records / max(cpu, 1e-9):,.0f}   (cores: {os.cpu_count()})"),
        ("load average at start / end", f"{load0:.2f} / {os.getloadavg()[0]:.2f}"),
    ]
    w = max(len(k) for k, _ in rows)
    print(f"{'metric':<{w}}  value")
    print("-" * (w + 40))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
