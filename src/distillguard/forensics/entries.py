"""The table behind the output index: per indexed output its request id, org, time and sketches.

Two backends with one small interface: :class:`ArrayEntries` (numpy arrays in memory, saved as
``.npy`` files) and :class:`RedisEntries` (one Redis hash, for an index shared by many processes).
Rows are dense integers; the LSH stores rows, this table turns them back into requests.
"""

from __future__ import annotations

import hashlib
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
    sig: np.ndarray  # answer MinHash values (uint32, or their lower 16 bits in the embedded layout)
    psig: np.ndarray  # prompt MinHash values (uint32, the first PROMPT_PERM)
    psize: int  # shingles in the prompt


class EntryTable(Protocol):
    num_perm: int
    prompt_perm: int

    def __len__(self) -> int: ...
    def add(self, entries: Sequence[Entry]) -> None: ...
    def get_many(self, rows: Sequence[int]) -> list[Entry]: ...
    def sigs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def known(self, ids: Sequence[str]) -> list[bool]: ...
    def get_state(self) -> dict[str, Any]: ...
    def set_state(self, state: dict[str, Any]) -> None: ...
    def save(self) -> None: ...


FORMAT = 3  # the on-disk layout version (1: pickled LSH and .npy entries, another shingle hash; 2: 32-bit sig)
# The answer sketches are kept as b-bit MinHash (Li & König): the lower 16 bits of each value. Scoring
# compares them (two different values agree by chance with probability 2^-16, negligible next to the
# estimator's own noise) at half the size; the LSH band keys are computed from the full values.
SIG_DTYPE = np.uint16
# fixed-width columns: name -> (dtype, columns or None for a vector)
_COLS = {"sig": (SIG_DTYPE, "num_perm"), "psig": (np.uint32, "prompt_perm"), "num": (np.float64, 3),
         "orgc": (np.int32, None), "idh": (np.uint64, None)}


def id_hash(rid: str) -> int:
    return int.from_bytes(hashlib.blake2b(rid.encode(), digest_size=8).digest(), "little")


class ArrayEntries:
    """Entries as fixed-width columns: a memory-mapped base on disk plus in-memory rows not yet saved.

    Columns (``<name>.bin`` files, row-major): answer sketch ``sig``, prompt sketch ``psig``,
    ``num`` (ts, size, psize), org code ``orgc``, request-id hash ``idh``; and ``ids.bin`` (request
    ids, fixed width). ``entries.json`` holds the row count, org names and state, and is replaced last,
    so a crash mid-save leaves the previous count (longer files are cut back on the next save).
    A trace reads only the rows of its candidates; nothing proportional to the index is built in RAM.
    """

    def __init__(self, num_perm: int, prompt_perm: int, directory: Path | None = None) -> None:
        self.num_perm, self.prompt_perm, self.directory = num_perm, prompt_perm, directory
        self._base_n = 0
        self._base: dict[str, np.ndarray] = {c: self._empty(c, 0) for c in _COLS}
        self._base_ids = np.zeros(0, "S1")
        self._chunks: list[dict[str, np.ndarray]] = []  # rows added since the last save, as column chunks
        self._new_ids: list[str] = []
        self._new_cols: dict[str, np.ndarray] | None = None
        self._orgs: list[str | None] = []
        self._org_code: dict[str | None, int] = {}
        self._state: dict[str, Any] = {}
        self._known_base: np.ndarray | None = None  # sorted id hashes of the base (built on first use)
        self._known_new: set[int] = set()

    def _width(self, col: str) -> int | None:
        w = _COLS[col][1]
        return getattr(self, w) if isinstance(w, str) else w

    def _empty(self, col: str, n: int) -> np.ndarray:
        w = self._width(col)
        return np.zeros((n, w) if w else (n,), _COLS[col][0])

    def __len__(self) -> int:
        return self._base_n + len(self._new_ids)

    def next_rows(self, n: int) -> range:
        return range(len(self), len(self) + n)

    def _code(self, org: str | None) -> int:
        if org is None:
            return -1
        c = self._org_code.get(org)
        if c is None:
            c = self._org_code[org] = len(self._orgs)
            self._orgs.append(org)
        return c

    def add(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        assert entries[0].row == len(self), "rows must be added in order"
        self.add_columns([e.id for e in entries], [e.org for e in entries],
                         np.array([e.ts for e in entries]), np.array([e.size for e in entries]),
                         np.stack([e.sig for e in entries]), np.stack([e.psig for e in entries]),
                         np.array([e.psize for e in entries]))

    def add_columns(self, ids: Sequence[str], orgs: Sequence[str | None], ts: np.ndarray, sizes: np.ndarray,
                    sig: np.ndarray, psig: np.ndarray, psizes: np.ndarray) -> None:
        """Append rows ``len(self) ...`` given as columns (no per-row objects)."""
        n = len(ids)
        idh = np.fromiter((id_hash(i) for i in ids), np.uint64, n)
        self._chunks.append({
            "sig": np.asarray(sig).astype(SIG_DTYPE), "psig": np.asarray(psig, np.uint32)[:, : self.prompt_perm],
            "num": np.column_stack([ts, sizes, psizes]).astype(np.float64),
            "orgc": np.fromiter((self._code(o) for o in orgs), np.int32, n), "idh": idh})
        self._new_ids.extend(ids)
        self._known_new.update(idh.tolist())
        self._new_cols = None

    def _new_columns(self) -> dict[str, np.ndarray]:
        if self._new_cols is None:
            if len(self._chunks) > 1:
                self._chunks = [{c: np.concatenate([ch[c] for ch in self._chunks]) for c in _COLS}]
            self._new_cols = self._chunks[0] if self._chunks else {c: self._empty(c, 0) for c in _COLS}
        return self._new_cols

    def _column(self, col: str, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        base = rows < self._base_n
        if base.all():
            return np.asarray(self._base[col][rows])
        out = self._empty(col, len(rows))
        out[base] = self._base[col][rows[base]]
        out[~base] = self._new_columns()[col][rows[~base] - self._base_n]
        return out

    def sigs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answer sketches, answer shingle counts) of the rows."""
        return self._column("sig", rows), self._column("num", rows)[:, 1].astype(np.int64)

    def get_many(self, rows: Sequence[int]) -> list[Entry]:
        r = np.asarray(rows, np.int64)
        if len(r) == 0:
            return []
        sig, psig, num, orgc = (self._column(c, r) for c in ("sig", "psig", "num", "orgc"))
        out = []
        for i, row in enumerate(r.tolist()):
            rid = (self._base_ids[row].decode() if row < self._base_n else self._new_ids[row - self._base_n])
            out.append(Entry(row, rid, self._orgs[orgc[i]] if orgc[i] >= 0 else None, float(num[i, 0]),
                             int(num[i, 1]), sig[i], psig[i], int(num[i, 2])))
        return out

    def known(self, ids: Sequence[str]) -> list[bool]:
        if self._known_base is None:
            self._known_base = np.sort(np.asarray(self._base["idh"]))
        hs = np.array([id_hash(i) for i in ids], np.uint64)
        kb = self._known_base
        pos = np.minimum(np.searchsorted(kb, hs), max(len(kb) - 1, 0))
        in_base = (kb[pos] == hs) if len(kb) else np.zeros(len(hs), bool)
        return [bool(b) or int(h) in self._known_new for b, h in zip(in_base, hs)]

    def get_state(self) -> dict[str, Any]:
        return dict(self._state)

    def set_state(self, state: dict[str, Any]) -> None:
        self._state = dict(state)

    # ---- persistence --------------------------------------------------------------------------
    def save(self) -> None:
        """Append the new rows to the column files, then replace ``entries.json`` (the commit point)."""
        if self.directory is None:
            return
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        meta_path = d / "entries.json"
        width = int(self._base_ids.dtype.itemsize) if self._base_n else 0
        if self._new_ids:
            cols = self._new_columns()
            for c in _COLS:
                _append(d / f"{c}.bin", self._base_n * _row_bytes(self._empty(c, 1)), cols[c])
            ids = np.array([i.encode() for i in self._new_ids])
            if ids.dtype.itemsize > width:  # a longer id: rewrite the id column at the new width
                width = max(ids.dtype.itemsize, 32)
                old = np.asarray(self._base_ids).astype(f"S{width}")
                _append(d / "ids.bin", 0, old)
            _append(d / "ids.bin", self._base_n * width, ids.astype(f"S{width}"))
        meta = {"format": FORMAT, "num_perm": self.num_perm, "prompt_perm": self.prompt_perm,
                "count": len(self), "id_width": width, "orgs": self._orgs, "state": self._state}
        tmp = d / "entries.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)
        if self._new_ids:
            self._open(d, meta)

    def _open(self, d: Path, meta: dict[str, Any]) -> None:
        n = int(meta["count"])
        self._base_n = n
        for c in _COLS:
            shape = (n, self._width(c)) if self._width(c) else (n,)
            self._base[c] = _map(d / f"{c}.bin", _COLS[c][0], shape)
        w = int(meta["id_width"])
        self._base_ids = _map(d / "ids.bin", f"S{w}", (n,)) if n else np.zeros(0, "S1")
        self._orgs = list(meta["orgs"])
        self._org_code = {o: i for i, o in enumerate(self._orgs)}
        self._chunks, self._new_ids, self._new_cols, self._known_base, self._known_new = [], [], None, None, set()

    @classmethod
    def load(cls, directory: Path) -> ArrayEntries:
        meta = json.loads((directory / "entries.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"index in {directory} has format {meta.get('format')}, expected {FORMAT}")
        self = cls(meta["num_perm"], meta["prompt_perm"], directory)
        self._open(directory, meta)
        self._state = meta["state"]
        return self


def _row_bytes(one: np.ndarray) -> int:
    return int(one.nbytes)


def _append(path: Path, offset: int, arr: np.ndarray) -> None:
    """Write ``arr`` at byte ``offset`` of ``path``, cutting off anything after it (an interrupted save)."""
    with open(path, "r+b" if path.exists() else "w+b") as f:
        f.truncate(offset)
        f.seek(offset)
        f.write(np.ascontiguousarray(arr).tobytes())
        f.flush()
        os.fsync(f.fileno())


def _map(path: Path, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    if shape[0] == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


_HEAD = struct.Struct("<dII")


class RedisEntries:
    """Entries in Redis: hash ``<p>entries`` (row → packed entry), ``<p>ids`` (id → row), ``<p>meta``."""

    def __init__(self, client: Any, prefix: str, num_perm: int, prompt_perm: int) -> None:
        self.r, self.p = client, prefix
        self.num_perm, self.prompt_perm = num_perm, prompt_perm
        self._sig_bytes, self._psig_bytes = 4 * num_perm, 4 * prompt_perm
        self._reserved: range = range(0)

    def __len__(self) -> int:
        return int(self.r.hget(self.p + "meta", "count") or 0)

    def next_rows(self, n: int) -> range:
        """Reserve n consecutive rows (atomic, so concurrent writers never share a row)."""
        end = int(self.r.hincrby(self.p + "meta", "allocated", n))
        self._reserved = range(end - n, end)
        return self._reserved

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

    def add_columns(self, ids: Sequence[str], orgs: Sequence[str | None], ts: np.ndarray, sizes: np.ndarray,
                    sig: np.ndarray, psig: np.ndarray, psizes: np.ndarray) -> None:
        """Store rows given as columns; rows come from :meth:`next_rows` (call it first)."""
        rows = self._reserved
        self.add([Entry(r, i, o, float(t), int(s), sg, ps[: self.prompt_perm], int(pz))
                  for r, i, o, t, s, sg, ps, pz in zip(rows, ids, orgs, ts, sizes, sig, psig, psizes)])

    def sigs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answer sketches, answer shingle counts) of the rows (rows not found: empty sketches)."""
        got = {e.row: e for e in self.get_many([int(r) for r in rows])}
        sig = np.full((len(rows), self.num_perm), np.iinfo(np.uint32).max, np.uint32)
        size = np.zeros(len(rows), np.int64)
        for i, r in enumerate(rows):
            e = got.get(int(r))
            if e is not None:
                sig[i], size[i] = e.sig, e.size
        return sig, size

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
