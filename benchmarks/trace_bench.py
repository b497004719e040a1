"""Benchmark of trace: index build rate, then trace time and peak RAM for a large dataset.

Stored outputs are real corpus answers, made unique by a random sentence prefix when more are needed
than the corpus holds; the dataset mixes 10% transformed stored outputs with other answers.

Three phases, each in its own process so the peak RSS of the trace is its own (not the build's):

1. build: the index -- embedded on disk (``--index-dir``, reused when it already holds ``--index-size``
   outputs) or in Redis (``--store redis``: under a fresh key prefix, deleted after the trace unless
   ``--keep``; ``--redis-prefix`` reuses a kept one) -- and the stored answers in a SQLite table (what
   the ledger holds; the alignment step reads the matched answers from it, in one query per batch);
2. dataset: the suspect dataset as a JSONL file of mixed training formats;
3. trace: open the index (memory-mapped), read the dataset file, trace it with alignment, prompt and
   per-org watermark evidence (as ``distillguard trace`` does), report time and peak RSS.

    .venv/bin/python benchmarks/trace_bench.py --index-size 1000000 --dataset-size 100000 [--store redis]

The build reports the whole build rate (generating and watermarking the outputs, sketching, SQLite)
and the time spent in ``add_outputs`` alone; with Redis also the server's ``used_memory``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from machine import reference_row  # benchmarks/ is on sys.path when a script in it runs

_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
          "mike", "november", "oscar", "papa"]
N_ORGS = 50
SECRET = "trace-bench-secret"


def _answers() -> list[tuple[str, str]]:
    from distillguard.upstreams.corpus import answer_points, iter_corpus

    shared = Path("/work/shared/data")
    out = []
    for rec in iter_corpus(shared if shared.is_dir() else None):
        for ap in answer_points(rec):
            out.append((next((m["content"] for m in reversed(ap.context) if m["role"] == "user"), ""), ap.answer))
    return out


def _pools() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rng = random.Random(1)
    pool = _answers()
    rng.shuffle(pool)
    return pool[: len(pool) // 2], pool[len(pool) // 2 :]


def _unique(rng: random.Random, text: str) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(8)) + ". " + text


def _cpu() -> float:
    """CPU time of this process and of its reaped children (trace workers)."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                         resource.RUSAGE_CHILDREN)))


class PssSampler:
    """Peak summed PSS of this process and its children (the trace workers), sampled every 0.2 s: memory the
    processes use together, pages they share (the memory-mapped index, memory inherited at fork) counted once."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _pss_mb(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def sample(self) -> float:
        me = os.getpid()
        try:
            kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
        except OSError:
            kids = []
        total = self._pss_mb(me) + sum(self._pss_mb(int(k)) for k in kids)
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def __enter__(self) -> PssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _redis_memory(args: argparse.Namespace) -> float | None:
    """Redis ``used_memory`` in MB (the whole server: other users' keys count too)."""
    if args.store != "redis":
        return None
    import redis

    r = redis.Redis.from_url(args.redis)
    try:
        return int(r.info("memory")["used_memory"]) / 2**20
    finally:
        r.close()


def _redis_cpu(args: argparse.Namespace) -> float:
    """CPU seconds (user + sys) the Redis server has used so far (0 without Redis)."""
    if args.store != "redis":
        return 0.0
    import redis

    r = redis.Redis.from_url(args.redis)
    try:
        info = r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        r.close()


def _open(args: argparse.Namespace, d: Path):
    from distillguard.forensics.index import OutputIndex

    if args.store == "redis":
        return OutputIndex.redis(args.redis, prefix=args.redis_prefix)
    return OutputIndex.open_dir(d)


def _org(k: int) -> str:
    return f"org_{k % N_ORGS:02d}"


def _outputs(stored: list[tuple[str, str]], n: int, watermark: bool):
    """Stored output i is corpus answer k = i mod len(stored) (marked with org k's key, as the gateway
    does), prefixed with a random sentence from the second round on; it belongs to org k."""
    from distillguard.forensics.index import Output
    from distillguard.watermark import Watermarker

    wm = Watermarker(SECRET) if watermark else None
    marked = [wm.apply(a, _org(k)) if wm else a for k, (_, a) in enumerate(stored[:n])]
    rng = random.Random(2)
    for i in range(n):
        k = i % len(stored)
        a = marked[k] if i < len(stored) else _unique(rng, marked[k])
        yield Output(f"req_{i:08d}", _org(k), float(i), stored[k][0], a)


def build(args: argparse.Namespace) -> None:
    from distillguard.forensics.index import clear_dir

    stored, _ = _pools()
    d = Path(args.index_dir)
    clear_dir(d)
    d.mkdir(parents=True, exist_ok=True)
    (d / "answers.sqlite").unlink(missing_ok=True)
    db = sqlite3.connect(d / "answers.sqlite")
    db.execute("create table answers (id text primary key, text text)")
    mem0, rc0 = _redis_memory(args), _redis_cpu(args)
    index = _open(args, d)
    t0 = time.perf_counter()
    add_s = 0.0
    batch = []

    def add(batch: list) -> float:
        t = time.perf_counter()
        index.add_outputs(batch)
        return time.perf_counter() - t

    for i, o in enumerate(_outputs(stored, args.index_size, args.watermark), 1):
        batch.append(o)
        if len(batch) >= 20_000:
            add_s += add(batch)
            db.executemany("insert into answers values (?, ?)", [(x.id, x.answer) for x in batch])
            batch = []
            if i % 200_000 == 0:
                t = time.perf_counter()
                index.save()  # bounds the rows held in memory (as update_from_ledger does)
                add_s += time.perf_counter() - t
    add_s += add(batch)
    db.executemany("insert into answers values (?, ?)", [(x.id, x.answer) for x in batch])
    t = time.perf_counter()
    index.save()
    add_s += time.perf_counter() - t
    build_s = time.perf_counter() - t0
    db.commit()
    mem1 = _redis_memory(args)
    print(json.dumps({"build_s": build_s, "add_s": add_s, "outputs": len(index), "build_rss_mb": rss_mb(),
                      "redis_mb": None if mem1 is None else mem1 - (mem0 or 0.0),
                      "redis_cpu_s": _redis_cpu(args) - rc0}))


def dataset(args: argparse.Namespace) -> None:
    from distillguard.forensics.adversary import transform
    from distillguard.watermark import Watermarker

    stored, other = _pools()
    wm = Watermarker(SECRET) if args.watermark else None
    rng = random.Random(3)
    n_pos = args.dataset_size // 10
    objs = []
    for i in range(args.dataset_size):
        if i < n_pos:
            k = rng.randrange(min(len(stored), args.index_size))
            p, a = stored[k]
            obj, _ = transform(p, wm.apply(a, _org(k)) if wm else a, rng)
            objs.append((obj, _org(k)))
        else:
            p, a = other[i % len(other)]
            objs.append(({"instruction": p, "output": a if i < len(other) else _unique(rng, a)}, None))
    rng.shuffle(objs)
    with open(args.dataset, "w") as f:
        f.writelines(json.dumps(obj) + "\n" for obj, _ in objs)
    Path(_labels_path(args.dataset)).write_text(json.dumps([org for _, org in objs]))
    print(json.dumps({"dataset": args.dataset}))


def _labels_path(dataset: str) -> str:
    """Where the dataset phase writes, per record in file order, the org of a planted copy (null otherwise)."""
    return dataset + ".labels.json"


def _found(res: dict, dataset: str, records: list) -> dict | None:
    """Planted copies found (and with their org; and of those with at least 20 tokens, the length from which
    trace-eval counts a copy as attributable), and other records matched, from the labels sidecar."""
    from distillguard.forensics.normalize import tokens

    path = Path(_labels_path(dataset))
    if not path.is_file():
        return None
    labels = json.loads(path.read_text())
    rows = res["records"]
    planted = [(r, org, rec) for r, org, rec in zip(rows, labels, records) if org is not None]
    long = [r for r, _, rec in planted if len(tokens(rec.answer)) >= 20]
    return {"planted": len(planted), "found": sum(1 for r, _, _ in planted if r["derived"]),
            "found_org": sum(1 for r, org, _ in planted if r["derived"] and r["org"] == org),
            "long": len(long), "long_found": sum(1 for r in long if r["derived"]),
            "other_matched": sum(1 for r, org in zip(rows, labels) if org is None and r["derived"])}


def trace(args: argparse.Namespace) -> None:
    from distillguard.forensics.formats import read_dataset
    from distillguard.forensics.trace import prompt_evidence, trace_records
    from distillguard.forensics.wmevidence import WatermarkEvidence
    from distillguard.watermark import Watermarker

    d = Path(args.index_dir)
    t0 = time.perf_counter()
    index = _open(args, d)
    open_s = time.perf_counter() - t0
    db = sqlite3.connect(d / "answers.sqlite")

    def originals(ids: list[str]) -> dict[str, str]:
        q = "select id, text from answers where id in (%s)" % ",".join("?" * len(ids))
        return dict(db.execute(q, ids).fetchall()) if ids else {}

    def reopen() -> None:  # in each trace worker: its own connection (SQLite's rule for forked processes)
        nonlocal db
        db = sqlite3.connect(d / "answers.sqlite")

    t0 = time.perf_counter()
    records = list(read_dataset(args.dataset))
    read_s = time.perf_counter() - t0
    providers = [prompt_evidence(index)]
    if args.watermark:
        providers.append(WatermarkEvidence(Watermarker(SECRET), [_org(i) for i in range(N_ORGS)]))
    t0, c0, rc0 = time.perf_counter(), _cpu(), _redis_cpu(args)
    with PssSampler() as pss:
        res = trace_records(records, index, evidence=providers, originals_many=originals, workers=args.workers,
                            worker_init=reopen)
    trace_s, trace_cpu, redis_cpu = time.perf_counter() - t0, _cpu() - c0, _redis_cpu(args) - rc0
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    mem = {k: int(status[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon", "RssFile") if k in status}
    redis_mb, size = _redis_memory(args), len(index)
    if args.store == "redis" and not args.keep:  # the benchmark's keys are not kept
        index.entries.io.clear()  # type: ignore[attr-defined]
    print(json.dumps({"open_s": open_s, "read_s": read_s, "trace_s": trace_s, "records": len(records),
                      "derived": res["summary"]["derived"], "index": size, "trace_rss_mb": rss_mb(),
                      "trace_cpu_s": trace_cpu, "mem_mb": mem, "pss_mb": pss.peak, "redis_mb": redis_mb,
                      "redis_cpu_s": redis_cpu, "found": _found(res, args.dataset, records)}))


def _run(phase: str, argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, *argv], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _have(args: argparse.Namespace) -> int | None:
    """How many outputs the index to reuse holds (None: there is none)."""
    from distillguard.forensics.entries import FORMAT

    if not (Path(args.index_dir) / "answers.sqlite").is_file():
        return None
    if args.store == "redis":
        import redis

        r = redis.Redis.from_url(args.redis)
        try:
            return int(r.hget(args.redis_prefix + "meta", "count") or 0) or None
        finally:
            r.close()
    meta = Path(args.index_dir) / "entries.json"
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    return info.get("count") if info.get("format") == FORMAT else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-size", type=int, default=100_000)
    ap.add_argument("--dataset-size", type=int, default=100_000)
    ap.add_argument("--index-dir", default=None, help="default: /tmp/dg-trace-bench-<index size>")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the index even if it exists")
    ap.add_argument("--no-watermark", dest="watermark", action="store_false",
                    help="stored answers unmarked and no watermark evidence")
    ap.add_argument("--store", choices=("disk", "redis"), default=None, help="index layout (default: disk)")
    ap.add_argument("--redis", default=None, help="Redis URL (implies --store redis; default: DG_TEST_REDIS_URL "
                    "or redis://127.0.0.1:6379/0)")
    ap.add_argument("--redis-prefix", default=None, help="reuse the index kept under this prefix (with --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the Redis keys after the trace")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="trace worker processes (distillguard trace --workers; default: cores)")
    ap.add_argument("--dataset", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.store = args.store or ("redis" if args.redis else "disk")
    if args.store == "redis":
        args.redis = args.redis or os.environ.get("DG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    tag = ("-nowm" if not args.watermark else "") + ("-redis" if args.store == "redis" else "")
    args.index_dir = args.index_dir or f"/tmp/dg-trace-bench-{args.index_size}{tag}"
    if args.phase:
        {"build": build, "dataset": dataset, "trace": trace}[args.phase](args)
        return
    argv = [a for a in sys.argv[1:] if a != "--rebuild"]
    if not any(a.startswith("--index-dir") for a in argv):
        argv += ["--index-dir", args.index_dir]
    if args.store == "redis":
        argv += ["--store", "redis", "--redis", args.redis]
        if not args.redis_prefix:
            args.redis_prefix = f"dgbench:{random.getrandbits(32):x}:"
            argv += ["--redis-prefix", args.redis_prefix]
    built = None
    if args.rebuild or _have(args) != args.index_size:
        built = _run("build", argv)
    ds = Path(args.index_dir) / f"dataset-{args.dataset_size}.jsonl"
    if not ds.is_file() or not Path(_labels_path(str(ds))).is_file():
        _run("dataset", argv + ["--dataset", str(ds)])
    tr = _run("trace", argv + ["--dataset", str(ds)])
    load = os.getloadavg()
    print("| measure | value |\n|---|---|")
    print("| {} | {} |".format(*reference_row()))
    print(f"| index backend | {'redis' if args.redis else 'disk (memory-mapped)'} |")
    print(f"| stored outputs indexed | {tr['index']} |")
    if built:
        print(f"| index build | {built['build_s']:.0f} s ({built['outputs'] / built['build_s']:.0f} outputs/s), "
              f"peak RSS {built['build_rss_mb']:.0f} MB |")
        print(f"| of which add_outputs (sketching + storing) | {built['add_s']:.0f} s "
              f"({built['outputs'] / built['add_s']:.0f} outputs/s) |")
        if built.get("redis_mb") is not None:
            print(f"| Redis used_memory added by the build | {built['redis_mb']:.0f} MB "
                  f"(server CPU {built['redis_cpu_s']:.0f} s) |")
    else:
        print("| index build | reused from an earlier run |")
    print(f"| open index | {tr['open_s']:.2f} s |")
    print(f"| read dataset file | {tr['read_s']:.1f} s |")
    print(f"| dataset records traced | {tr['records']} |")
    print(f"| trace time (wall), {args.workers} worker process{'es' if args.workers > 1 else ''} | "
          f"{tr['trace_s']:.1f} s ({tr['records'] / tr['trace_s']:.0f} records/s) |")
    print(f"| trace CPU time (user + sys, all processes) | {tr['trace_cpu_s']:.1f} s |")
    if args.store == "redis":
        print(f"| Redis server CPU time during the trace | {tr['redis_cpu_s']:.1f} s |")
    m = tr["mem_mb"]
    print(f"| peak RSS of the trace process | {tr['trace_rss_mb']:.0f} MB (at the end: {m.get('RssAnon', 0):.0f} MB "
          f"anonymous + {m.get('RssFile', 0):.0f} MB mapped index pages) |")
    print(f"| peak memory of the trace, all processes (summed PSS, shared pages once) | {tr['pss_mb']:.0f} MB |")
    if tr.get("redis_mb") is not None:
        print(f"| Redis used_memory after the trace (whole server) | {tr['redis_mb']:.0f} MB |")
    if args.keep and args.store == "redis":
        print(f"| Redis keys kept under | {args.redis_prefix} |")
    f = tr.get("found")
    if f:
        print(f"| planted copies found | {f['found']} of {f['planted']} ({f['found'] / max(1, f['planted']):.3f}); "
              f"with their org: {f['found_org']} |")
        print(f"| planted copies of 20+ tokens found | {f['long_found']} of {f['long']} "
              f"({f['long_found'] / max(1, f['long']):.3f}; shorter ones are rarely attributable by text) |")
        print(f"| other records matched | {f['other_matched']} (the other pool is from the same corpus: some share "
              f"an answer with a stored output; trace-eval measures precision) |")
    else:
        print(f"| derived found | {tr['derived']} (of {args.dataset_size // 10} planted) |")
    print(f"| load average after (1/5/15 min) | {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} |")


if __name__ == "__main__":
    main()
