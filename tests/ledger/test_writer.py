"""LedgerWriter: batching, flush, close, outages, rejected records, body retention, retention."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from distillguard.ledger.store import LedgerStore
from distillguard.ledger.writer import LedgerWriter

from .conftest import make_record


class Recording:
    """Wraps a store: records batch sizes, and fails with an outage while `down` is set."""

    def __init__(self, inner: LedgerStore) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.down = threading.Event()
        self.calls = 0

    def write_batch(self, records):  # noqa: ANN001
        self.calls += 1
        if self.down.is_set():
            raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))
        self.batches.append(len(records))
        return self.inner.write_batch(records)

    def purge_older_than(self, ts: float) -> int:
        return self.inner.purge_older_than(ts)


def _segments(d: Path) -> list[Path]:
    return sorted(d.glob("*.jsonl"))


def test_append_flush_round_trip(store: LedgerStore, tmp_path):
    w = LedgerWriter(store, tmp_path / "j", "rep-1", batch_size=64)
    w.start()
    recs = [make_record(i) for i in range(500)]
    for r in recs:
        w.append(r)
    assert w.flush(timeout=30)
    assert w.pending == 0 and w.written == 500
    assert store.count() == 500
    got = store.get(recs[7].id)
    assert got.replica == "rep-1" and got.request == recs[7].request and got.ts == recs[7].ts
    assert w.close()


def test_batches_respect_batch_size(sqlite_store, tmp_path):
    rec = Recording(sqlite_store)
    w = LedgerWriter(rec, tmp_path / "j", "r", batch_size=50)
    w.start()
    for i in range(1000):
        w.append(make_record(i))
    assert w.flush(timeout=30)
    assert sum(rec.batches) == 1000 and max(rec.batches) <= 50
    w.close()


def test_close_flushes_and_removes_segments(sqlite_store, tmp_path):
    d = tmp_path / "j"
    w = LedgerWriter(sqlite_store, d, "r", batch_size=1000, flush_interval_s=60)  # only close will flush
    w.start()
    for i in range(300):
        w.append(make_record(i))
    assert _segments(d)
    assert w.close()
    assert sqlite_store.count() == 300
    assert _segments(d) == []
    with pytest.raises(RuntimeError):
        w.append(make_record(1000))


def test_append_before_start_is_refused(sqlite_store, tmp_path):
    w = LedgerWriter(sqlite_store, tmp_path, "r")
    with pytest.raises(RuntimeError):
        w.append(make_record(1))


def test_segments_rotate_and_committed_ones_are_deleted(sqlite_store, tmp_path):
    d = tmp_path / "j"
    w = LedgerWriter(sqlite_store, d, "r", batch_size=20, segment_max_bytes=4096, checkpoint_interval_s=0.0)
    w.start()
    for i in range(400):  # ~200 KB: dozens of segments
        w.append(make_record(i))
    assert w.flush(timeout=30)
    # once caught up the writer seals and deletes: wait for it (bounded), not for a fixed time
    deadline = time.monotonic() + 10
    while len(_segments(d)) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_segments(d)) <= 1
    assert sqlite_store.count() == 400
    w.close()


def test_outage_records_land_after_recovery(sqlite_store, tmp_path):
    rec = Recording(sqlite_store)
    rec.down.set()
    w = LedgerWriter(rec, tmp_path / "j", "r", batch_size=16, flush_interval_s=0.01, retry_max_s=0.05)
    w.start()
    for i in range(200):
        w.append(make_record(i))  # never blocks on the database
    assert not w.flush(timeout=0.3)  # cannot complete while the database is down
    assert w.failed_attempts >= 1 and w.pending == 200
    assert sqlite_store.count() == 0
    rec.down.clear()
    assert w.flush(timeout=30)
    assert sqlite_store.count() == 200 and w.pending == 0
    w.close()


def test_close_during_outage_leaves_journal_for_next_start(sqlite_store, tmp_path):
    d = tmp_path / "j"
    rec = Recording(sqlite_store)
    rec.down.set()
    w = LedgerWriter(rec, d, "r", retry_max_s=0.05)
    w.start()
    for i in range(100):
        w.append(make_record(i))
    assert w.close(timeout=0.3) is False
    assert w.flush(timeout=None) is False  # stopped: answers at once instead of waiting forever
    assert _segments(d)
    w2 = LedgerWriter(sqlite_store, d, "r2")
    assert w2.start() == 100
    assert sqlite_store.count() == 100
    assert w2.flush(timeout=30)
    assert w2.close() and _segments(d) == []


def test_start_during_outage_replays_later(sqlite_store, tmp_path):
    d = tmp_path / "j"
    first = Recording(sqlite_store)
    first.down.set()
    w = LedgerWriter(first, d, "r", retry_max_s=0.05)
    w.start()
    for i in range(50):
        w.append(make_record(i))
    assert w.close(timeout=0.2) is False  # the records stay in the journal
    second = Recording(sqlite_store)
    second.down.set()
    w2 = LedgerWriter(second, d, "r2", retry_max_s=0.05)
    assert w2.start() == 0  # store down: recovery postponed, start does not fail
    assert w2.failed_attempts >= 1 and sqlite_store.count() == 0
    second.down.clear()
    assert w2.flush(timeout=30)
    assert sqlite_store.count() == 50 and w2.recovered == 50
    assert w2.close()


def test_recovery_beyond_the_start_budget_continues_in_the_background(sqlite_store, tmp_path):
    d = tmp_path / "j"
    first = Recording(sqlite_store)
    first.down.set()
    w = LedgerWriter(first, d, "r", retry_max_s=0.05)
    w.start()
    for i in range(30):
        w.append(make_record(i))
    w.close(timeout=0.2)
    w2 = LedgerWriter(sqlite_store, d, "r2")
    assert w2.start(recovery_budget_s=0) == 0
    assert w2.flush(timeout=30)
    assert sqlite_store.count() == 30 and w2.recovered == 30
    assert w2.close()


def test_a_record_the_database_refuses_is_set_aside(store: LedgerStore, tmp_path):
    d = tmp_path / "j"
    w = LedgerWriter(store, d, "r", batch_size=100)
    w.start()
    for i in range(10):
        w.append(make_record(i, status=None) if i == 4 else make_record(i))  # NOT NULL violation
    assert w.flush(timeout=30)
    assert store.count() == 9 and w.rejected == 1
    (dead,) = (d / "rejected").glob("*.jsonl")
    line = orjson.loads(dead.read_bytes())
    assert line["record"]["id"] == "req_00000004" and "status" in line["error"]
    w.close()


def test_bodies_are_dropped_before_the_journal_when_not_retained(sqlite_store, tmp_path):
    d = tmp_path / "j"
    rec = Recording(sqlite_store)
    rec.down.set()
    w = LedgerWriter(rec, d, "r", store_bodies=False, retry_max_s=0.05)
    w.start()
    w.append(make_record(1, response_text="SECRET-ANSWER", request={"messages": "SECRET-PROMPT"}))
    raw = b"".join(p.read_bytes() for p in _segments(d))
    assert b"SECRET" not in raw and b"req_00000001" in raw
    rec.down.clear()
    assert w.flush(timeout=30)
    got = sqlite_store.get("req_00000001")
    assert got.request is None and got.response_text is None and got.prompt_tokens == 10
    w.close()


@pytest.mark.parametrize("fsync", ["batch", "always"])
def test_fsync_policies_write_everything(sqlite_store, tmp_path, fsync):
    w = LedgerWriter(sqlite_store, tmp_path / "j", "r", fsync=fsync)
    w.start()
    for i in range(50):
        w.append(make_record(i))
    assert w.close()
    assert sqlite_store.count() == 50


def test_retention_purges_old_records(sqlite_store, tmp_path):
    now = time.time()
    sqlite_store.write_batch([make_record(1, ts=now - 3 * 86400), make_record(2, ts=now)])
    w = LedgerWriter(sqlite_store, tmp_path / "j", "r", retention_days=1, retention_interval_s=0.01)
    w.start()
    deadline = time.monotonic() + 10
    while sqlite_store.count() != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.id for r in sqlite_store.iter_records()] == ["req_00000002"]
    w.close()


def test_many_threads_append(sqlite_store, tmp_path):
    w = LedgerWriter(sqlite_store, tmp_path / "j", "r", batch_size=128)
    w.start()

    def work(t: int) -> None:
        for i in range(250):
            w.append(make_record(t * 1000 + i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.close()
    assert sqlite_store.count() == 2000


async def test_append_from_an_event_loop(sqlite_store, tmp_path):
    with LedgerWriter(sqlite_store, tmp_path / "j", "r") as w:
        for i in range(20):
            w.append(make_record(i))
    assert sqlite_store.count() == 20
