"""Append-only write-ahead journal: the ledger's durable queue between a request and the database.

Each writer owns segment files ``<replica>-<pid>-<random>-<seq>.jsonl`` in one directory and holds
an exclusive ``flock`` on every segment it owns for as long as it owns it. A segment that another
process *can* lock therefore has no live owner: it is an orphan, and :meth:`Journal.adopt_orphans`
takes it over (the lock makes the hand-over exclusive, so two recovering processes never replay the
same segment at once, and nobody takes a live writer's segment).

``append`` is one ``os.write`` of one JSON line on an ``O_APPEND`` descriptor. Once it returns, the
line is in the kernel's page cache and survives the death of the process (SIGKILL, OOM kill, a
crash). Surviving a power loss or a kernel crash also needs the line on disk: ``fsync="batch"``
syncs at every flush cycle of the writer (a power loss then costs at most about one flush interval
of records), ``fsync="always"`` syncs every append before it returns (slow on real disks).

Fork-safety: a child created by ``fork()`` shares the parent's segment descriptors and locks; it
must not append through the parent's journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .codec import dumps_line, loads_line

FsyncPolicy = Literal["never", "batch", "always"]
SUFFIX = ".jsonl"
DEFAULT_SEGMENT_MAX_BYTES = 4 << 20
_READ_CHUNK = 1 << 20


@dataclass(eq=False)
class Segment:
    """One journal file. ``committed`` (bytes now in the store) is advanced by the consumer only."""

    path: Path
    fd: int
    adopted: bool = False  # taken over from a dead writer
    size: int = 0  # bytes written (own) / file size when adopted
    records: int = 0  # lines appended (own segments only)
    sealed: bool = False  # no more appends
    committed: int = 0
    synced: int = 0
    created: float = field(default_factory=time.monotonic)
    removed: bool = False

    @property
    def done(self) -> bool:
        return self.sealed and self.committed >= self.size


class Journal:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        replica_id: str,
        *,
        fsync: FsyncPolicy = "never",
        segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES,
    ) -> None:
        if fsync not in ("never", "batch", "always"):
            raise ValueError(f"fsync must be 'never', 'batch' or 'always', not {fsync!r}")
        self.directory = Path(directory)
        self.fsync: FsyncPolicy = fsync
        self.segment_max_bytes = segment_max_bytes
        self.prefix = f"{_safe(replica_id)}-{os.getpid()}-{secrets.token_hex(4)}"
        self.appended = 0  # records appended over the journal's life
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._own: list[Segment] = []  # oldest first; the last one is current while open
        self._adopted: list[Segment] = []
        self._current: Segment | None = None

    # ---- producer side ----------------------------------------------------------------------
    def open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # records hold prompts
        seg = self._new_segment()
        with self._lock:
            self._own.append(seg)
            self._current = seg

    @property
    def is_open(self) -> bool:
        return self._current is not None

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one record durably (against process death) before returning. Thread-safe."""
        data = dumps_line(row)
        with self._lock:
            seg = self._current
            if seg is None:
                raise RuntimeError("journal is not open")
            try:
                _write_all(seg.fd, data)
            except BaseException:
                _truncate(seg.fd, seg.size)  # never leave half a line for the next append to follow
                raise
            seg.size += len(data)
            seg.records += 1
            self.appended += 1
            if self.fsync == "always":
                os.fdatasync(seg.fd)
                seg.synced = seg.size

    def needs_rotation(self) -> bool:
        seg = self._current
        return seg is not None and seg.size >= self.segment_max_bytes

    def rotate(self) -> bool:
        """Seal the current segment (if it holds anything) and start a new one."""
        cur = self._current
        if cur is None or cur.size == 0:
            return False
        new = self._new_segment()  # outside the lock: appends go on meanwhile
        with self._lock:
            if self._current is None:  # closed meanwhile
                self._discard(new)
                return False
            self._current.sealed = True
            self._own.append(new)
            self._current = new
        return True

    def sync(self) -> None:
        """fdatasync every own segment with unsynced bytes (the ``batch`` policy)."""
        for seg in list(self._own):
            size = seg.size
            if size > seg.synced and not seg.removed:
                os.fdatasync(seg.fd)
                seg.synced = size

    # ---- consumer side ----------------------------------------------------------------------
    def segments(self) -> tuple[list[Segment], list[Segment]]:
        """(own segments oldest first, adopted segments), as snapshots of the lists."""
        with self._lock:
            return list(self._own), list(self._adopted)

    def adopt_orphans(self) -> list[Segment]:
        """Take over every segment in the directory whose owner is gone; returns the new ones."""
        with self._lock:
            known = {s.path.name for s in self._own + self._adopted}
        found: list[Segment] = []
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            if path.name in known:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except (FileNotFoundError, IsADirectoryError):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live writer owns it
                continue
            st = os.fstat(fd)
            if st.st_nlink == 0:  # replayed and deleted by whoever held it before us
                os.close(fd)
                continue
            found.append(Segment(path=path, fd=fd, adopted=True, size=st.st_size, sealed=True))
        with self._lock:
            self._adopted.extend(found)
        return found

    def remove(self, seg: Segment) -> None:
        """Delete a segment whose records are all in the store (unlink first, then unlock)."""
        with self._lock:
            if seg.removed:
                return
            if seg is self._current:
                raise RuntimeError("cannot remove the current segment")
            self._discard(seg)
            if seg.adopted:
                self._adopted.remove(seg)
            else:
                self._own.remove(seg)

    def close(self) -> None:
        """Stop appends; delete fully committed segments, release (keep on disk) the others."""
        with self._lock:
            self._current = None
            segs, self._own, self._adopted = self._own + self._adopted, [], []
        for seg in segs:
            if seg.committed >= seg.size:
                self._discard(seg)
            elif not seg.removed:
                seg.removed = True
                os.close(seg.fd)  # the lock goes with it: the next start adopts the file

    # ---- internals --------------------------------------------------------------------------
    def _new_segment(self) -> Segment:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for _ in range(100):
            path = self.directory / f"{self.prefix}-{next(self._seq):08d}{SUFFIX}"
            fd = os.open(path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # a recovering process may have locked, "replayed" and deleted the empty file
                # between our create and our lock: make sure the name is still ours
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    raise FileNotFoundError(path)
            except (BlockingIOError, FileNotFoundError):
                os.close(fd)
                continue
            if self.fsync != "never":
                _fsync_dir(self.directory)
            return Segment(path=path, fd=fd)
        raise OSError(f"could not create a journal segment in {self.directory}")

    @staticmethod
    def _discard(seg: Segment) -> None:
        if seg.removed:
            return
        seg.removed = True
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()
        os.close(seg.fd)


def read_rows(seg: Segment, start: int, end: int, max_rows: int) -> tuple[list[dict[str, Any]], int, int]:
    """Up to ``max_rows`` records from ``seg`` between byte offsets ``start`` and ``end``.

    Returns (rows, bytes consumed, lines consumed). Only whole lines are consumed, except at the
    end of a sealed segment, where a torn last line (the writer died mid-write) is skipped.
    Lines that are not JSON objects are consumed and dropped.
    """
    rows: list[dict[str, Any]] = []
    consumed = lines = 0
    chunk = _READ_CHUNK
    while start + consumed < end and len(rows) < max_rows:
        pos = start + consumed
        buf = os.pread(seg.fd, min(chunk, end - pos), pos)
        if not buf:
            break
        nl = buf.rfind(b"\n")
        if nl < 0:
            if pos + len(buf) >= end:
                if seg.sealed:  # torn tail of a dead writer's segment
                    consumed += len(buf)
                    lines += 1
                break
            chunk *= 2  # a line longer than the chunk
            continue
        for line in _split(buf[: nl + 1]):
            consumed += len(line) + 1
            lines += 1
            doc = loads_line(line) if line.strip() else None
            if isinstance(doc, dict):
                rows.append(doc)
            if len(rows) >= max_rows:
                break
        chunk = _READ_CHUNK
    return rows, consumed, lines


def _split(buf: bytes) -> Iterator[bytes]:
    start = 0
    while True:
        nl = buf.find(b"\n", start)
        if nl < 0:
            return
        yield buf[start:nl]
        start = nl + 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _truncate(fd: int, size: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe(replica_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", replica_id)[:64] or "replica"
