"""A writer process SIGKILLed mid-flight loses no acknowledged record, and nobody steals live segments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from distillguard.ledger.store import LedgerStore
from distillguard.ledger.writer import LedgerWriter

CHILD = str(Path(__file__).with_name("crash_child.py"))


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_ready(p: subprocess.Popen[bytes]) -> None:
    line = p.stdout.readline()  # type: ignore[union-attr]
    assert line == b"READY\n", p.stderr.read().decode()  # type: ignore[union-attr]


def _kill(p: subprocess.Popen[bytes]) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()  # type: ignore[union-attr]
    p.stderr.close()  # type: ignore[union-attr]


def _all_ids(store: LedgerStore) -> list[str]:
    return [r.id for r in store.iter_records()]


def test_sigkill_with_nothing_written_recovers_exactly_n(store: LedgerStore, db_url, tmp_path):
    d = tmp_path / "journal"
    n = 1500
    p = _spawn("stuck", str(d), db_url, str(n))
    _wait_ready(p)
    _kill(p)
    assert store.count() == 0
    w = LedgerWriter(store, d, "after-crash")
    assert w.start() == n
    ids = _all_ids(store)
    assert len(ids) == n and set(ids) == {f"req_{i:08d}" for i in range(n)}
    assert w.close()
    assert list(d.glob("*.jsonl")) == []


def test_sigkill_under_load_loses_no_acknowledged_record(sqlite_store: LedgerStore, sqlite_url, tmp_path):
    d = tmp_path / "journal"
    threads = 4
    p = _spawn("load", str(d), sqlite_url, str(threads))
    acked: list[str] = []
    buf = b""
    deadline = time.monotonic() + 60
    # let it run until its own writer has committed a good part (segments rotated and deleted too)
    while (len(acked) < 3000 or sqlite_store.count() < 500) and time.monotonic() < deadline:
        buf += os.read(p.stdout.fileno(), 65536)  # type: ignore[union-attr]
        *done, buf = buf.split(b"\n")
        acked += [x.decode() for x in done]
    assert len(acked) >= 3000 and sqlite_store.count() >= 500, p.stderr.read().decode()  # type: ignore[union-attr]
    os.kill(p.pid, signal.SIGKILL)
    rest = p.stdout.read()  # type: ignore[union-attr]  # acknowledged before the kill
    p.wait(timeout=30)
    *done, _torn = (buf + rest).split(b"\n")
    acked += [x.decode() for x in done]
    p.stdout.close()  # type: ignore[union-attr]
    p.stderr.close()  # type: ignore[union-attr]

    before = sqlite_store.count()
    w = LedgerWriter(sqlite_store, d, "after-crash")
    recovered = w.start()
    assert w.flush(timeout=30)
    ids = _all_ids(sqlite_store)
    assert len(ids) == len(set(ids))  # no duplicates
    assert set(acked) <= set(ids)  # nothing acknowledged is lost
    assert len(ids) - len(acked) <= threads  # at most one in flight per thread besides
    assert 0 < before < len(ids) and recovered > 0  # the kill left work for the recovery
    assert w.close()
    assert list(d.glob("*.jsonl")) == []


def test_two_processes_do_not_steal_live_segments(store: LedgerStore, db_url, tmp_path):
    d = tmp_path / "journal"
    n = 200
    p = _spawn("stuck", str(d), db_url, str(n))
    try:
        _wait_ready(p)
        live = sorted(d.glob("*.jsonl"))
        assert live
        w = LedgerWriter(store, d, "second", orphan_scan_interval_s=None)
        assert w.start() == 0
        assert w.recover_orphans() == 0
        assert w.flush(timeout=30)
        assert store.count() == 0 and all(x.exists() for x in live)
    finally:
        _kill(p)
    assert w.recover_orphans() >= 1  # the owner is dead now
    assert w.flush(timeout=30)
    assert store.count() == n
    assert w.close()
    assert list(d.glob("*.jsonl")) == []
