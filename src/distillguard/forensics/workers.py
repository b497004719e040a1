"""Trace on several cores: batches of records are matched in forked worker processes, the evidence pass stays here.

Matching a batch (sketching, LSH scoring, alignment with the stored answers, corroboration: ~80% of a trace's
time) depends on nothing but the batch, so workers take batches in any order; results come back in record
order. Evidence providers keep dataset-wide state (the watermark pools fill in record order), so they run
in this process, on each batch as it arrives -- with what a provider's ``prepare(record, match)`` computed
for it in the worker (the watermark slots of the records it may need), handed over by ``accept``. The output
is the same as one process gives.

Workers are forked after the index is opened, so they share it (a memory-mapped index through the page cache);
a lookup that holds a connection must open its own in ``worker_init``.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .formats import DatasetRecord

_JOB: dict[str, Any] = {}  # set here before forking, read by the workers


def _start(init: Callable[[], None] | None) -> None:
    if init is not None:
        init()


def _work(buf: list[DatasetRecord]) -> tuple[dict[int, Any], list[dict[int, Any]]]:
    best = _JOB["matcher"](buf)
    prepared = [{r.index: p.prepare(r, best.get(r.index)) for r in buf} for p in _JOB["preparers"]]
    for m in best.values():  # what the evidence pass and the report read; the shingle hashes stay here
        m.sketch = dataclasses.replace(m.sketch, hashes=None, toks=None)
    return best, prepared


def match_in_workers(matcher: Callable[[Sequence[DatasetRecord]], dict[int, Any]], records: Iterable[DatasetRecord],
                     batch: int, workers: int, providers: Sequence[Any],
                     worker_init: Callable[[], None] | None = None,
                     ) -> Iterator[tuple[list[DatasetRecord], dict[int, Any]]]:
    """(batch, its best matches) in record order, matched by ``workers`` forked processes."""
    recs = list(records)
    batches = [recs[i : i + batch] for i in range(0, len(recs), batch)]
    workers = min(workers, len(batches))
    if workers <= 1 or "fork" not in mp.get_all_start_methods():  # one batch, or no fork (then one process)
        for buf in batches:
            yield buf, matcher(buf)
        return
    preparers = [p for p in providers if callable(getattr(p, "prepare", None))]
    if _JOB:
        raise RuntimeError("match_in_workers is already running in this process")
    _JOB.update(matcher=matcher, preparers=preparers)
    gc.freeze()  # the collector would touch every inherited object, copying the pages shared with this process
    try:
        with mp.get_context("fork").Pool(workers, initializer=_start, initargs=(worker_init,)) as pool:
            # batches are sent (pickled) rather than read from the inherited list: reading them would copy the
            # pages they share with this process into each worker
            for i, (best, prepared) in enumerate(pool.imap(_work, batches)):
                for p, data in zip(preparers, prepared):
                    p.accept(data)
                yield batches[i], best
    finally:
        _JOB.clear()
        gc.unfreeze()
