"""Detection speed: per-request feature cost (online budget ≤ 50 µs) and batch throughput (1M records ≤ 60 s).

    .venv/bin/python benchmarks/detect_bench.py [--records 1000000] [--input traffic.jsonl]

Without --input, the simulator's ``mixed-small`` scenario (dev split) is generated once and replicated with renamed
accounts, shifted clocks and fresh ids up to --records; the batch run reads that file from disk like
``distillguard detect`` does.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import orjson
from rich.console import Console
from rich.table import Table

from distillguard.detect.account import AccountState
from distillguard.detect.bench import default_index
from distillguard.detect.engine import Detector
from distillguard.detect.features import extract
from distillguard.detect.online import OnlineDetector
from distillguard.detect.parallel import run_file
from distillguard.detect.train import read_jsonl


def base_records(path: str | None) -> list[dict]:
    if path:
        return list(read_jsonl(path))
    from distillguard.sim import generate, get

    out, labels = io.BytesIO(), io.BytesIO()
    generate(get("mixed-small"), 1, out, labels, split="dev")
    return [orjson.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def write_scaled(base: list[dict], n: int, path: str) -> int:
    span = max(r["ts"] for r in base) - min(r["ts"] for r in base) + 60.0
    written = 0
    with open(path, "wb") as f:
        copy = 0
        while written < n:
            for r in base:
                if written >= n:
                    break
                d = dict(r)
                d["org"] = f"{r.get('org')}-{copy}"
                d["id"] = f"{r.get('id')}-{copy}"
                d["ts"] = r["ts"] + copy * span
                f.write(orjson.dumps(d) + b"\n")
                written += 1
            copy += 1
    return written


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--input", default=None)
    a = ap.parse_args()
    base = base_records(a.input)
    bench = default_index()
    rows: list[tuple[str, str]] = []

    lines = [orjson.dumps(r) for r in base]
    t = time.perf_counter()
    parsed = [orjson.loads(x) for x in lines]
    t_parse = (time.perf_counter() - t) / len(lines)
    t = time.perf_counter()
    feats = [extract(r, bench) for r in parsed]
    t_extract = (time.perf_counter() - t) / len(lines)
    states: dict[str, AccountState] = {}
    t = time.perf_counter()
    for r, f in zip(parsed, feats):
        st = states.get(r["org"])
        if st is None:
            st = states[r["org"]] = AccountState(r["org"])
        st.add(f)
    t_add = (time.perf_counter() - t) / len(lines)
    online = OnlineDetector(bench=bench)
    t = time.perf_counter()
    for r in parsed:
        online.observe(r)
    t_online = (time.perf_counter() - t) / len(lines)
    rows += [
        ("records in base sample", f"{len(base):,}"),
        ("JSON parse / request", f"{t_parse * 1e6:.1f} µs"),
        ("feature extraction / request", f"{t_extract * 1e6:.1f} µs"),
        ("account update / request", f"{t_add * 1e6:.1f} µs"),
        ("online observe / request (features + window + checkpoint scoring)", f"{t_online * 1e6:.1f} µs"),
    ]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "traffic.jsonl")
        n = write_scaled(base, a.records, path)
        size = os.path.getsize(path)
        t = time.perf_counter()
        rep = Detector(bench=bench).run(read_jsonl(path))
        dt = time.perf_counter() - t
        workers = os.cpu_count() or 1
        t = time.perf_counter()
        rep_p = run_file(Detector(bench=bench), path, workers=workers)
        dt_p = time.perf_counter() - t
    rows += [
        (f"batch detect, {n:,} records ({size / 1e6:.0f} MB), {len(rep.accounts):,} accounts, 1 process",
         f"{dt:.1f} s"),
        ("batch throughput, 1 process", f"{n / dt:,.0f} records/s"),
        ("projected for 1M records, 1 process", f"{1e6 / (n / dt):.0f} s"),
        (f"batch detect, {workers} workers (distillguard detect --workers {workers})", f"{dt_p:.1f} s"),
        (f"projected for 1M records, {workers} workers", f"{1e6 / (n / dt_p):.0f} s"),
        ("rings found", str(len(rep.rings))),
        ("same verdicts in parallel", str([a.to_json() for a in rep.accounts] == [a.to_json() for a in rep_p.accounts])),
    ]
    table = Table(title=f"detect benchmark (cpus: {os.cpu_count()})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)


if __name__ == "__main__":
    main()
