"""The table behind the output index: per indexed output its request id, org, time and sketches.

Two backends with one small interface: :class:`ArrayEntries` (numpy arrays in memory, saved as
``.npy`` files) and :class:`RedisEntries` (one Redis hash, for an index shared by many processes).
Rows are dense integers; the LSH stores rows, this table turns them back into requests.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Entry:
    row: int
    id: str
    org: str | None
    ts: float
    size: int  # shingles in the answer
    sig: np.ndarray  # answer MinHash values (uint32)
    psig: np.ndarray  # prompt MinHash values (uint32, the first PROMPT_PERM)
    psize: int  # shingles in the prompt


class EntryTable(Protocol):
    num_perm: int
    prompt_perm: int

    def __len__(self) -> int: ...
    def add(self, entries: Sequence[Entry]) -> None: ...
    def get_many(self, rows: Sequence[int]) -> list[Entry]: ...
    def known(self, ids: Sequence[str]) -> list[bool]: ...
    def get_state(self) -> dict[str, Any]: ...
    def set_state(self, state: dict[str, Any]) -> None: ...
    def save(self) -> None: ...


class ArrayEntries:
    """Entries in growable numpy arrays; ``save``/``load`` to a directory of ``.npy`` files."""

    def __init__(self, num_perm: int, prompt_perm: int, directory: Path | None = None) -> None:
        self.num_perm, self.prompt_perm, self.directory = num_perm, prompt_perm, directory
        self._n = 0
        self._sig = np.zeros((1024, num_perm), np.uint32)
        self._psig = np.zeros((1024, prompt_perm), np.uint32)
        self._num = np.zeros((1024, 3), np.float64)  # ts, size, psize
        self._ids: list[str] = []
        self._orgs: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._state: dict[str, Any] = {}

    def __len__(self) -> int:
        return self._n

    def _grow(self, need: int) -> None:
        cap = len(self._sig)
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name in ("_sig", "_psig", "_num"):
            old = getattr(self, name)
            new = np.zeros((cap, old.shape[1]), old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def next_rows(self, n: int) -> range:
        return range(self._n, self._n + n)

    def add(self, entries: Sequence[Entry]) -> None:
        self._grow(self._n + len(entries))
        for e in entries:
            assert e.row == self._n, "rows must be added in order"
            self._sig[e.row] = e.sig
            self._psig[e.row] = e.psig
            self._num[e.row] = (e.ts, e.size, e.psize)
            self._ids.append(e.id)
            self._orgs.append(e.org)
            self._row_of[e.id] = e.row
            self._n += 1

    def get_many(self, rows: Sequence[int]) -> list[Entry]:
        return [
            Entry(r, self._ids[r], self._orgs[r], float(self._num[r, 0]), int(self._num[r, 1]),
                  self._sig[r], self._psig[r], int(self._num[r, 2]))
            for r in rows
        ]

    def known(self, ids: Sequence[str]) -> list[bool]:
        return [i in self._row_of for i in ids]

    def get_state(self) -> dict[str, Any]:
        return dict(self._state)

    def set_state(self, state: dict[str, Any]) -> None:
        self._state = dict(state)

    # ---- persistence --------------------------------------------------------------------------
    def save(self) -> None:
        if self.directory is None:
            return
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        n = self._n
        _atomic_npy(d / "sig.npy", self._sig[:n])
        _atomic_npy(d / "psig.npy", self._psig[:n])
        _atomic_npy(d / "num.npy", self._num[:n])
        meta = {"num_perm": self.num_perm, "prompt_perm": self.prompt_perm, "ids": self._ids,
                "orgs": self._orgs, "state": self._state}
        tmp = d / "entries.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, d / "entries.json")

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> ArrayEntries:
        meta = json.loads((directory / "entries.json").read_text())
        self = cls(meta["num_perm"], meta["prompt_perm"], directory)
        mode = "r" if mmap else None
        sig = np.load(directory / "sig.npy", mmap_mode=mode)
        psig = np.load(directory / "psig.npy", mmap_mode=mode)
        num = np.load(directory / "num.npy", mmap_mode=mode)
        self._n = len(meta["ids"])
        if mmap:  # read-only views; _grow copies them into RAM on the first add
            self._sig, self._psig, self._num = sig, psig, num
        else:
            self._sig, self._psig, self._num = sig.copy(), psig.copy(), num.copy()
        self._ids, self._orgs, self._state = meta["ids"], meta["orgs"], meta["state"]
        self._row_of = {i: r for r, i in enumerate(self._ids)}
        if len(self._sig) == 0:
            self._sig = np.zeros((1024, self.num_perm), np.uint32)
            self._psig = np.zeros((1024, self.prompt_perm), np.uint32)
            self._num = np.zeros((1024, 3), np.float64)
        return self


def _atomic_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


_HEAD = struct.Struct("<dII")


class RedisEntries:
    """Entries in Redis: hash ``<p>entries`` (row → packed entry), ``<p>ids`` (id → row), ``<p>meta``."""

    def __init__(self, client: Any, prefix: str, num_perm: int, prompt_perm: int) -> None:
        self.r, self.p = client, prefix
        self.num_perm, self.prompt_perm = num_perm, prompt_perm
        self._sig_bytes, self._psig_bytes = 4 * num_perm, 4 * prompt_perm

    def __len__(self) -> int:
        return int(self.r.hget(self.p + "meta", "count") or 0)

    def next_rows(self, n: int) -> range:
        """Reserve n consecutive rows (atomic, so concurrent writers never share a row)."""
        end = int(self.r.hincrby(self.p + "meta", "allocated", n))
        return range(end - n, end)

    def add(self, entries: Sequence[Entry]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for e in entries:
            pipe.hset(self.p + "entries", str(e.row), self._pack(e))
            pipe.hset(self.p + "ids", e.id, e.row)
        pipe.hincrby(self.p + "meta", "count", len(entries))
        pipe.execute()

    def _pack(self, e: Entry) -> bytes:
        tail = json.dumps([e.id, e.org]).encode()
        return (_HEAD.pack(e.ts, e.size, e.psize) + np.asarray(e.sig, np.uint32).tobytes()
                + np.asarray(e.psig, np.uint32).tobytes() + tail)

    def _unpack(self, row: int, b: bytes) -> Entry:
        ts, size, psize = _HEAD.unpack_from(b)
        o = _HEAD.size
        sig = np.frombuffer(b, np.uint32, self.num_perm, o)
        o += self._sig_bytes
        psig = np.frombuffer(b, np.uint32, self.prompt_perm, o)
        o += self._psig_bytes
        rid, org = json.loads(b[o:])
        return Entry(row, rid, org, ts, size, sig, psig, psize)

    def get_many(self, rows: Sequence[int]) -> list[Entry]:
        if not rows:
            return []
        vals = self.r.hmget(self.p + "entries", [str(r) for r in rows])
        return [self._unpack(r, v) for r, v in zip(rows, vals) if v is not None]

    def known(self, ids: Sequence[str]) -> list[bool]:
        if not ids:
            return []
        return [v is not None for v in self.r.hmget(self.p + "ids", list(ids))]

    def get_state(self) -> dict[str, Any]:
        raw = self.r.hget(self.p + "meta", "state")
        return json.loads(raw) if raw else {}

    def set_state(self, state: dict[str, Any]) -> None:
        self.r.hset(self.p + "meta", "state", json.dumps(state))

    def save(self) -> None:  # every write is already durable in Redis
        return None


def batched(items: Iterable[Any], n: int) -> Iterable[list[Any]]:
    buf: list[Any] = []
    for x in items:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
