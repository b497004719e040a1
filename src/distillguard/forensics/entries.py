"""The table behind the output index: per indexed output its request id, org, time and sketches.

Two backends with one small interface: :class:`ArrayEntries` (fixed-width column files, memory-mapped)
and :class:`RedisEntries` (fixed-width records in Redis strings, for an index shared by many processes).
Rows are dense integers; the LSH stores rows, this table turns them back into requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .redisio import RedisIO, name, names, records

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    row: int
    id: str
    org: str | None
    ts: float
    size: int  # shingles in the answer
    sig: np.ndarray  # answer MinHash values: their lower 16 bits (uint16, see SIG_DTYPE)
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


FORMAT = 5  # the on-disk layout version (1: pickled LSH and .npy entries, another shingle hash; 2: 32-bit sig;
# 3: tokens before Unicode folding, normalize.fold; 4: no band keys of long answers' first halves)
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


LAYOUT = "4"  # the Redis layout version (1: datasketch LSH keys and one hash of packed entries; 2: tokens before
# Unicode folding, normalize.fold; 3: no band keys of long answers' first halves)
BLOCK_BYTES = (1 << 19) - 64  # a column block string stays just under a 512 KB allocation
LABEL_ROWS = 256  # rows per label hash (small enough for Redis's compact listpack encoding)
CACHE_BYTES = 1 << 30  # score blocks a reading process keeps; past that, rows are read one by one
ID_SHARD_BITS = 14  # id hashes: 16384 hashes of ~61 ids each at a million outputs (listpack too)


class RedisEntries:
    """Entries in Redis under one prefix, as fixed-width binary records in a few big strings.

    - ``s:<block>`` and ``m:<block>``: strings of fixed-width records, one block of rows each, allocated
      whole on their first write (``SETRANGE`` of the last byte: no growth slack). ``s`` holds the
      answer shingle count (u32) and answer sketch (u16 x num_perm), what scoring reads for every
      candidate pair: a reading process keeps the blocks it has read (:class:`_Blocks`, up to
      ``cache_bytes``; 260 MB at a million outputs), because reading millions of records one by one
      costs seconds of Redis and client time per trace whatever the command. ``m`` holds the time (f8),
      prompt shingle count (u32) and prompt sketch (u32 x prompt_perm), read per matched row
      (``GETRANGE`` in one Lua call).
    - ``l:<row / 256>``: hash, row (1 byte) -> JSON ``[request id, org]``;
    - ``i:<id hash % 2^14>``: hash, 64-bit request-id hash -> row (for :meth:`known`);
    - ``meta``: hash with ``count``, ``allocated`` (row reservations), ``state`` and ``layout``.
    """

    def __init__(self, io: RedisIO, num_perm: int, prompt_perm: int, cache_bytes: int = CACHE_BYTES) -> None:
        self.io, self.r, self.p = io, io.r, io.p
        self.num_perm, self.prompt_perm = num_perm, prompt_perm
        self._score_w, self._meta_w = 4 + 2 * num_perm, 12 + 4 * prompt_perm
        self._meta = io.key("meta")
        self._reserved: range = range(0)
        self._blocks = _Blocks(io, "s:", self._score_w, cache_bytes)

    @classmethod
    def open(cls, io: RedisIO, num_perm: int, prompt_perm: int) -> RedisEntries:
        """The entries under ``io``'s prefix; keys of an older layout there are deleted first (rebuild)."""
        meta = io.r.hgetall(io.key("meta"))
        if (meta and meta.get(b"layout") != LAYOUT.encode()) or io.r.exists(io.key("entries"), io.key("df")):
            log.warning("forensics index under Redis prefix %r has an old layout; rebuilding it", io.p)
            io.clear()
            meta = {}
        if meta and int(meta.get(b"num_perm", num_perm)) != num_perm:
            raise ValueError(f"Redis index {io.p!r} has num_perm {int(meta[b'num_perm'])}, expected {num_perm}")
        io.r.hset(io.key("meta"), mapping={"layout": LAYOUT, "num_perm": num_perm})
        return cls(io, num_perm, prompt_perm)

    def __len__(self) -> int:
        return int(self.r.hget(self._meta, "count") or 0)

    def next_rows(self, n: int) -> range:
        """Reserve n consecutive rows (atomic, so concurrent writers never share a row)."""
        end = int(self.r.hincrby(self._meta, "allocated", n))
        self._reserved = range(end - n, end)
        return self._reserved

    # ---- writes -------------------------------------------------------------------------------
    def add(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        rows = [e.row for e in entries]
        assert rows == list(range(rows[0], rows[0] + len(rows))), "rows must be consecutive"
        self._write(rows[0], [e.id for e in entries], [e.org for e in entries], np.array([e.ts for e in entries]),
                    np.array([e.size for e in entries]), np.stack([e.sig for e in entries]),
                    np.stack([e.psig for e in entries]), np.array([e.psize for e in entries]))

    def add_columns(self, ids: Sequence[str], orgs: Sequence[str | None], ts: np.ndarray, sizes: np.ndarray,
                    sig: np.ndarray, psig: np.ndarray, psizes: np.ndarray) -> None:
        """Store rows given as columns; rows come from :meth:`next_rows` (call it first)."""
        assert len(self._reserved) == len(ids), "reserve the rows with next_rows first"
        self._write(self._reserved.start, ids, orgs, ts, sizes, sig, psig, psizes)

    def _write(self, start: int, ids: Sequence[str], orgs: Sequence[str | None], ts: np.ndarray,
               sizes: np.ndarray, sig: np.ndarray, psig: np.ndarray, psizes: np.ndarray) -> None:
        n = len(ids)
        score = records(np.asarray(sizes, "<u4"), np.asarray(sig).astype("<u2"))
        meta = records(np.asarray(ts, "<f8"), np.asarray(psizes, "<u4"),
                       np.asarray(psig, np.uint32)[:, : self.prompt_perm].astype("<u4"))
        pipe = self.r.pipeline(transaction=False)
        self._put_column(pipe, "s:", self._score_w, start, score)
        self._put_column(pipe, "m:", self._meta_w, start, meta)
        for lo in range(start - start % LABEL_ROWS, start + n, LABEL_ROWS):
            sel = range(max(lo, start), min(lo + LABEL_ROWS, start + n))
            pipe.hset(self.io.key(name("l:", lo // LABEL_ROWS, 6)),
                      mapping={bytes([r % LABEL_ROWS]): json.dumps([ids[r - start], orgs[r - start]]) for r in sel})
        pipe.execute()
        idh = np.fromiter((id_hash(i) for i in ids), np.uint64, n)
        self.io.hset(records(names("i:", idh & np.uint64((1 << ID_SHARD_BITS) - 1), 4), idh.astype("<u8"),
                             np.arange(start, start + n, dtype="<u4")), 6, 8)
        self.r.hincrby(self._meta, "count", n)

    def _put_column(self, pipe: Any, tag: str, width: int, start: int, recs: np.ndarray) -> None:
        per = BLOCK_BYTES // width
        lo = start
        while lo < start + len(recs):
            blk, hi = lo // per, min(start + len(recs), (lo // per + 1) * per)
            key = self.io.key(name(tag, blk, 5))
            pipe.setrange(key, per * width, b"\0")  # allocate the whole block once (exact size)
            pipe.setrange(key, (lo % per) * width, recs[lo - start : hi - start].tobytes())
            lo = hi

    # ---- reads --------------------------------------------------------------------------------
    def _get_column(self, tag: str, width: int, rows: np.ndarray) -> np.ndarray:
        return _get_rows(self.io, tag, width, rows)

    def sigs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answer sketches, answer shingle counts) of the rows."""
        uniq, inv = np.unique(np.asarray(rows, np.int64), return_inverse=True)
        raw = self._blocks.get(uniq)
        size = raw[:, :4].copy().view("<u4")[:, 0].astype(np.int64)
        sig = raw[:, 4:].copy().view("<u2").astype(SIG_DTYPE)
        return sig[inv], size[inv]

    def get_many(self, rows: Sequence[int]) -> list[Entry]:
        """The entries of the rows (rows never written are left out)."""
        r = np.asarray(rows, np.int64)
        if len(r) == 0:
            return []
        labels = self.io.hget(records(names("l:", (r // LABEL_ROWS).astype(np.uint64), 6),
                                      (r % LABEL_ROWS).astype(np.uint8)), 8)
        sig, size = self.sigs(r)
        meta = self._get_column("m:", self._meta_w, r)
        ts = meta[:, :8].copy().view("<f8")[:, 0]
        psize = meta[:, 8:12].copy().view("<u4")[:, 0]
        psig = meta[:, 12:].copy().view("<u4").astype(np.uint32)
        out = []
        for i, (row, lab) in enumerate(zip(r.tolist(), labels)):
            if lab is not None:
                rid, org = json.loads(lab)
                out.append(Entry(row, rid, org, float(ts[i]), int(size[i]), sig[i], psig[i], int(psize[i])))
        return out

    def known(self, ids: Sequence[str]) -> list[bool]:
        if not ids:
            return []
        idh = np.fromiter((id_hash(i) for i in ids), np.uint64, len(ids))
        got = self.io.hget(records(names("i:", idh & np.uint64((1 << ID_SHARD_BITS) - 1), 4), idh.astype("<u8")), 6)
        return [v is not None for v in got]

    def get_state(self) -> dict[str, Any]:
        raw = self.r.hget(self._meta, "state")
        return json.loads(raw) if raw else {}

    def set_state(self, state: dict[str, Any]) -> None:
        self.r.hset(self._meta, "state", json.dumps(state))

    def save(self) -> None:  # every write is already stored in Redis
        return None


def _get_rows(io: RedisIO, tag: str, width: int, rows: np.ndarray) -> np.ndarray:
    """The rows' records of a block-string column, one ``GETRANGE`` each (one Lua call per batch)."""
    per = BLOCK_BYTES // width
    rows = np.asarray(rows, np.int64)
    recs = records(names(tag, (rows // per).astype(np.uint64), 5), ((rows % per) * width).astype("<u4"))
    return io.getrange(recs, 2 + 5, width)


class _Blocks:
    """Whole blocks of a block-string column, kept by a reading process once read.

    Rows are written once and never change, so a kept block stays right except for rows not yet
    written when it was read: their records are all zeros (a written answer sketch never is: an empty
    one is all 0xFFFF), and asking for such a row reads its block again. Past ``limit`` bytes, rows of
    blocks not kept are read one by one."""

    def __init__(self, io: RedisIO, tag: str, width: int, limit: int) -> None:
        self.io, self.tag, self.width, self.limit = io, tag, width, limit
        self.per = BLOCK_BYTES // width
        self._kept: dict[int, np.ndarray] = {}

    def _read(self, blocks: list[int]) -> None:
        room = (self.limit - len(self._kept) * self.per * self.width) // (self.per * self.width)
        blocks = blocks[: max(room, 0)]
        for lo in range(0, len(blocks), 32):
            part = blocks[lo : lo + 32]
            pipe = self.io.r.pipeline(transaction=False)
            for b in part:
                pipe.get(self.io.key(name(self.tag, b, 5)))
            for b, raw in zip(part, pipe.execute()):
                if raw is not None and len(raw) >= self.per * self.width:
                    self._kept[b] = np.frombuffer(raw, np.uint8, self.per * self.width).reshape(self.per, self.width)
                else:
                    self._kept.pop(b, None)

    def get(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), width) uint8 records of the (sorted, distinct) rows; rows never written: zeros."""
        blk, off = rows // self.per, rows % self.per
        out = np.zeros((len(rows), self.width), np.uint8)
        if len(rows) == 0:
            return out
        self._read([b for b in np.unique(blk).tolist() if b not in self._kept])
        for again in (False, True):
            kept = np.isin(blk, np.fromiter(self._kept, np.int64, len(self._kept)))
            cut = np.flatnonzero(np.diff(blk[kept])) + 1
            for sel in np.split(np.flatnonzero(kept), cut):
                if len(sel):
                    out[sel] = self._kept[int(blk[sel[0]])][off[sel]]
            blank = kept & ~out.any(axis=1)
            if again or not blank.any():
                break
            stale = np.unique(blk[blank]).tolist()
            for b in stale:
                del self._kept[b]
            self._read(stale)
        far = ~np.isin(blk, np.fromiter(self._kept, np.int64, len(self._kept)))
        if far.any():
            out[far] = _get_rows(self.io, self.tag, self.width, rows[far])
        return out


def batched(items: Iterable[Any], n: int) -> Iterable[list[Any]]:
    buf: list[Any] = []
    for x in items:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
