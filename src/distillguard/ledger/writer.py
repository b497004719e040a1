"""The batching ledger writer: journal first (synchronous, microseconds), database later (a thread).

``append`` writes the record to this writer's journal segment and returns; it never waits for the
database. The journal *is* the queue: a background thread reads the segments back in order,
inserts them in batches (idempotently, so a replay after a crash never duplicates), and deletes a
segment once everything in it is committed. While the database is down the thread retries with
backoff and records simply accumulate on disk, so memory stays bounded and nothing is lost.

On ``start`` the writer adopts the segments of dead writers in the same directory (see
:mod:`.journal`) and replays them; it looks for new orphans every ``orphan_scan_interval_s``.
A record the database rejects for its content (never for an outage) is set aside in
``<journal_dir>/rejected/`` rather than blocking the ledger.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from .codec import dumps_line, record_row
from .journal import FsyncPolicy, Journal, Segment, read_rows
from .record import LedgerRecord

log = logging.getLogger(__name__)

REJECTED_DIR = "rejected"


class BatchStore(Protocol):
    def write_batch(self, records: Sequence[Mapping[str, Any]]) -> int: ...

    def purge_older_than(self, ts: float) -> int: ...


class LedgerWriter:
    def __init__(
        self,
        store: BatchStore,
        journal_dir: str | os.PathLike[str],
        replica_id: str,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        fsync: FsyncPolicy = "never",
        *,
        store_bodies: bool = True,
        retention_days: float | None = None,
        retention_interval_s: float = 3600.0,
        segment_max_bytes: int = 4 << 20,
        checkpoint_interval_s: float = 1.0,
        orphan_scan_interval_s: float | None = 30.0,
        retry_max_s: float = 5.0,
    ) -> None:
        self.store = store
        self.replica_id = replica_id
        self.batch_size = max(1, batch_size)
        self.flush_interval_s = flush_interval_s
        self.store_bodies = store_bodies
        self.retention_days = retention_days
        self.retention_interval_s = retention_interval_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.orphan_scan_interval_s = orphan_scan_interval_s
        self.retry_max_s = retry_max_s
        self.journal = Journal(journal_dir, replica_id, fsync=fsync, segment_max_bytes=segment_max_bytes)
        # counters (written by the writer thread, read by anyone)
        self.written = 0  # records committed to the store (own and recovered)
        self.recovered = 0  # of which from dead writers' segments
        self.failed_attempts = 0  # store calls that failed (outages)
        self.rejected = 0  # records the store refused for their content
        self._committed_own = 0  # own records committed, in append order
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()  # leave once caught up
        self._abort = threading.Event()  # leave now (close timed out)
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._closed = False
        self._turn = 0
        self._rotate_retry_at = 0.0

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, recovery_budget_s: float = 30.0) -> int:
        """Open the journal, replay orphaned segments, start the thread. Returns records recovered here.

        The replay runs here for at most ``recovery_budget_s``; what is left of it (a huge backlog,
        or everything if the store is down) is replayed by the thread, which retries. ``start``
        never fails for a database outage.
        """
        if self._thread is not None:
            raise RuntimeError("writer already started")
        self.journal.open()
        self.journal.adopt_orphans()
        deadline = time.monotonic() + recovery_budget_s
        try:
            while time.monotonic() < deadline and self._step(adopted_only=True, retry=False):
                pass
        except Exception as e:  # noqa: BLE001 - an outage at start is retried by the thread
            log.warning("ledger recovery postponed, store unavailable: %r", e)
        recovered = self.recovered  # read before the thread starts: it may go on replaying at once
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        return recovered

    def close(self, timeout: float | None = 10.0) -> bool:
        """Refuse new records, flush, stop the thread, delete committed segments.

        Returns False when not everything reached the store in time; what did not stays in the
        journal (unlocked) and is replayed by the next writer that starts on this directory.
        """
        if self._closed:
            return True
        self._closed = True
        self._accepting = False
        if self._thread is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = self.flush(timeout)
        if not ok:
            self._abort.set()
        self._stop.set()
        self._wake.set()
        self._thread.join(None if deadline is None else max(1.0, deadline - time.monotonic()))
        if self._thread.is_alive():  # stuck in a store call: leave the journal to it / to the OS
            log.error("ledger writer did not stop; %d records remain in the journal", self.pending)
            return False
        self.journal.close()
        return ok

    def __enter__(self) -> LedgerWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- producer API -----------------------------------------------------------------------
    def append(self, record: LedgerRecord | Mapping[str, Any]) -> None:
        """Journal the record (durable when this returns) and queue it. Thread-safe, non-blocking."""
        if not self._accepting:
            raise RuntimeError("ledger writer is not running")
        row = record_row(record) if isinstance(record, LedgerRecord) else dict(record)
        if not self.store_bodies:
            row["request"] = None
            row["response_text"] = None
        if not row.get("replica"):
            row["replica"] = self.replica_id
        self.journal.append(row)
        if not self._wake.is_set() and (
            self.journal.appended - self._committed_own >= self.batch_size or self.journal.needs_rotation()
        ):
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record appended so far (and every adopted orphan) is in the store."""
        target = self.journal.appended
        _, adopted = self.journal.segments()
        if self._thread is None or not self._thread.is_alive():
            return self._committed_own >= target and not adopted  # nobody would make progress
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(
                lambda: self._committed_own >= target and all(s.removed for s in adopted), timeout
            )

    def recover_orphans(self) -> int:
        """Adopt the segments of writers that died since the last scan; the thread replays them."""
        found = self.journal.adopt_orphans()
        if found:
            self._wake.set()
        return len(found)

    @property
    def pending(self) -> int:
        """Own records journaled but not yet in the store."""
        return self.journal.appended - self._committed_own

    def stats(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "written": self.written,
            "recovered": self.recovered,
            "failed_attempts": self.failed_attempts,
            "rejected": self.rejected,
        }

    # ---- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        now = time.monotonic()
        next_scan = now + (self.orphan_scan_interval_s or 0)
        next_retention = now + min(5.0, self.retention_interval_s)
        while not self._abort.is_set():
            self._wake.clear()
            try:
                if self.journal.fsync == "batch":
                    self.journal.sync()
                if self._step(adopted_only=False, retry=True):
                    continue
            except Exception:  # noqa: BLE001 - keep the writer alive whatever happens
                if self._abort.is_set():
                    return  # close() gave up waiting for the store; the journal keeps the rest
                log.exception("ledger writer step failed")
                self._abort.wait(1.0)
                continue
            if self._stop.is_set():
                return
            now = time.monotonic()
            if self.orphan_scan_interval_s is not None and now >= next_scan:
                next_scan = now + self.orphan_scan_interval_s
                self._guard(self.recover_orphans)
            if self.retention_days is not None and now >= next_retention:
                next_retention = now + self.retention_interval_s
                self._guard(self._apply_retention)
            self._wake.wait(self.flush_interval_s)

    def _step(self, adopted_only: bool, retry: bool) -> bool:
        """Do one unit of work (a batch, a removal, a rotation); False when there was none."""
        if not adopted_only and self.journal.needs_rotation() and self._rotate():
            return True
        own, adopted = self.journal.segments()
        for s in own + adopted:
            if s.done:
                self.journal.remove(s)
                self._notify()
                return True
        adopted_work = next((s for s in adopted if s.committed < s.size), None)
        own_work = None if adopted_only else next((s for s in own if s.committed < s.size), None)
        seg: Segment | None
        if adopted_work is not None and own_work is not None:
            self._turn ^= 1  # alternate: replaying a big orphan must not starve live records
            seg = own_work if self._turn else adopted_work
        else:
            seg = own_work or adopted_work
        if seg is not None:
            return self._process(seg, retry)
        if adopted_only:
            return False
        cur = own[-1] if own else None
        if cur is not None and cur.size > 0 and time.monotonic() - cur.created >= self.checkpoint_interval_s:
            return self._rotate()  # caught up: seal it so the next step deletes it
        return False

    def _rotate(self) -> bool:
        if time.monotonic() < self._rotate_retry_at:
            return False
        try:
            return self.journal.rotate()
        except OSError as e:  # e.g. disk full: keep appending to the current segment
            log.warning("ledger journal rotation failed: %r", e)
            self._rotate_retry_at = time.monotonic() + 5.0
            return False

    def _process(self, seg: Segment, retry: bool) -> bool:
        end = seg.size
        rows, consumed, lines = read_rows(seg, seg.committed, end, self.batch_size)
        if not consumed:
            return False
        delay = 0.05
        while True:
            try:
                self._write(rows)
                break
            except Exception as e:
                self.failed_attempts += 1
                if not retry or self._abort.is_set():
                    raise
                log.warning("ledger store write failed (retrying in %.2fs): %r", delay, e)
                if self._abort.wait(delay):
                    raise
                delay = min(delay * 2, self.retry_max_s)
        with self._cond:
            seg.committed += consumed
            self.written += len(rows)
            if seg.adopted:
                self.recovered += len(rows)
            else:
                self._committed_own += lines
            self._cond.notify_all()
        return True

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if not self.store_bodies:
            for r in rows:
                r["request"] = r["response_text"] = None
        try:
            self.store.write_batch(rows)
            return
        except Exception as e:
            if not _is_poison(e):
                raise
            if len(rows) == 1:
                self._reject(rows[0], e)
                return
        for row in rows:  # find the record(s) the store refuses
            try:
                self.store.write_batch([row])
            except Exception as e:
                if not _is_poison(e):
                    raise
                self._reject(row, e)

    def _reject(self, row: Mapping[str, Any], err: BaseException) -> None:
        self.rejected += 1
        log.error("ledger record %s rejected by the store: %r", row.get("id"), err)
        d = self.journal.directory / REJECTED_DIR
        d.mkdir(exist_ok=True)
        line = dumps_line({"error": repr(err)[:2000], "record": dict(row)})
        with open(Path(d) / f"{self.journal.prefix}.jsonl", "ab") as f:
            f.write(line)

    def _apply_retention(self) -> None:
        assert self.retention_days is not None
        n = self.store.purge_older_than(time.time() - self.retention_days * 86400.0)
        if n:
            log.info("ledger retention: purged %d records", n)

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @staticmethod
    def _guard(fn: Any) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001
            log.exception("ledger maintenance failed")


def _is_poison(e: BaseException) -> bool:
    """True when the error is about the record's content rather than the database being away."""
    if isinstance(e, (sa.exc.DataError, sa.exc.IntegrityError)):
        return True
    if isinstance(e, sa.exc.StatementError) and not isinstance(e, sa.exc.DBAPIError):
        return True  # e.g. a value no bind processor can handle
    return isinstance(e, (TypeError, ValueError))
