"""Batch detection over a traffic file on several cores: accounts are sharded by org across forked workers.

Each worker reads the whole file but parses only the lines of its own orgs (the org is found by a byte search,
so skipping a line costs no JSON parsing), extracts features, keeps the per-account trackers and gives each account
its own verdict; the parent merges the accounts (disjoint by org) and finishes as the single-process detector does
(rings over all accounts). The report is the same as ``Detector.run`` over the file, whatever the number of workers.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ..jsonl import read_objects
from .engine import AccountResult, Detector, Report, Tracked
from .features import RequestFeatures, extract
from .rings import warm_up

_JOB: dict[str, Any] = {}  # set in the parent before forking


def _org_bytes(line: bytes) -> bytes | None:
    i = line.find(b'"org":"')
    if i < 0:
        return None
    i += 7
    j = line.find(b'"', i)
    return line[i:j] if j > 0 and line.find(b"\\", i, j) < 0 else None


def _items(path: Path, shard: int, shards: int, det: Detector) -> Iterator[tuple[str, RequestFeatures]]:
    with open(path, "rb") as f:
        for line in f:
            ob = _org_bytes(line)
            if ob is not None:
                if zlib.crc32(ob) % shards != shard:
                    continue
                rec = orjson.loads(line)
            else:  # unusual layout: parse to find the org
                if not line.strip():
                    continue
                rec = orjson.loads(line)
                org = rec.get("org")
                if not isinstance(org, str) or zlib.crc32(org.encode()) % shards != shard:
                    continue
            org = rec.get("org")
            if org:
                yield str(org), extract(rec, det.bench)


def _work(shard: int) -> tuple[dict[str, Tracked], dict[str, AccountResult], int, float]:
    """One shard's accounts and their own verdicts (and when, on the monotonic clock, the shard was done). Sub-streams
    stay here: the parent needs only the accounts (rings are found and scored over account states), which keeps what
    is pickled back small."""
    det: Detector = _JOB["detector"]
    orgs: dict[str, Tracked] = {}
    keys: dict[tuple[str, str], Tracked] = {}
    n = det.consume(_items(_JOB["path"], shard, _JOB["shards"], det), orgs, keys)
    results = det.verdicts(orgs, keys)
    for t in orgs.values():
        t.sharing = []  # references to sub-streams, done with
        t.served = None  # answers served (``continuity``): needed only while consuming
        t.state.shed_rare_scaffolds()  # a third of what is sent back, and most of its objects
    return orgs, results, n, time.monotonic()


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a batch run (and in the workers forked meanwhile).

    A run builds millions of long-lived objects (account aggregates) and few cycles: with the collector on, its
    passes over the growing heap cost ~7% of a worker's time and more than half of unpickling the workers' results
    (measured on 1M records). What reference counting cannot free waits until the run ends.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run_file(detector: Detector, path: str | Path, workers: int | None = None,
             phases: dict[str, float] | None = None) -> Report:
    """``detector`` over the JSONL traffic file at ``path``, on ``workers`` processes (default: all cores).

    ``phases`` (with several workers), if given, receives seconds spent: ``workers`` until the last shard was done,
    ``collect`` from then until its accounts were in the parent (pickling, the pipe, unpickling), ``report`` for
    rings and the report."""
    with gc_paused():
        return _run_file(detector, Path(path), workers or os.cpu_count() or 1, phases)


def _run_file(detector: Detector, path: Path, workers: int, phases: dict[str, float] | None) -> Report:
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        return detector.run(read_objects(path))
    _JOB.update(detector=detector, path=path, shards=workers)
    start = time.monotonic()
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            pending = pool.map_async(_work, range(workers))
            if detector.use_rings:
                warm_up()  # the parent's imports for rings while the workers run, not after
            parts = pending.get()
    finally:
        _JOB.clear()
    collected = time.monotonic()
    merged: dict[str, Tracked] = {}
    results: dict[str, AccountResult] = {}
    count = 0
    for o, r, n, _ in parts:
        merged.update(o)
        results.update(r)
        count += n
    # first-seen order, as a single pass over the (time-ordered) file would have met them
    orgs = dict(sorted(merged.items(), key=lambda kv: (kv[1].state.t_min, kv[0])))
    report = detector.report(orgs, results, count)
    if phases is not None:
        done = max(p[3] for p in parts)
        phases.update(workers=done - start, collect=collected - done, report=time.monotonic() - collected)
    return report
