"""LSH band tables for the output index: datasketch's banding, stored as sorted numpy arrays or in Redis.

The banding (``b`` bands of ``r`` MinHash values, chosen by datasketch's ``MinHashLSH`` for the
threshold and false-positive/negative weights) is datasketch's; only the storage differs by layout:

- :class:`ArrayBands` (embedded index): per band, the band keys of every stored output in one sorted
  ``uint32`` array with the matching rows. On disk they are two ``.npy`` files read memory-mapped, so a
  trace touches only the pages it searches; a query is one ``np.searchsorted`` per band for a whole batch.
  datasketch's in-memory storage keeps one Python set per bucket, which at a million outputs and 42 bands
  is tens of millions of objects (several GB, minutes to unpickle); this layout is ~8 bytes per output
  and band. New rows live in a small in-memory delta until :meth:`ArrayBands.save` merges them in.
- :class:`RedisBands` (Redis layout): the same band keys, in Redis strings shared by every process
  that opens the same prefix. Band ``j``'s keys are split by their top ``SHARD_BITS`` bits into
  strings of appended (low 16 key bits, row) pairs (6 bytes a pair, no per-entry object); a whole
  batch of lookups is one Lua call that scans the shard strings (see :mod:`.redisio`). A per-bucket
  hash field or datasketch's per-bucket keys cost 50-100 bytes of Redis memory per output and band,
  and reading a shard costs Redis ~1.4 ns a byte, so shards are kept small.

Both answer a batch query with flat arrays ``(query index, row)``; a bucket holding more than ``cap``
rows (one canned answer stored thousands of times) contributes its first ``cap`` rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
from datasketch import MinHashLSH

from .redisio import RedisIO, name, names, records

BUCKET_CAP = 100
SHARD_BITS = 16  # shard strings per band in Redis: ~15 pairs (92 bytes) each at a million outputs
FILTER_BITS = 29  # presence map of (band, key) in Redis: 64 MB
FILTER_CHUNK = (1 << 20) - 256  # bits per presence-map string: just under 128 KB allocated (with a spare byte)
_MULT = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                  0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB], np.uint64)
_S = np.uint64(33)


class Bands(Protocol):
    """What the output index needs of a band table layout."""

    b: int
    r: int

    def add(self, rows: np.ndarray, values: np.ndarray) -> None: ...

    def query(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float]) -> tuple[int, int]:
    """(bands, rows per band) as datasketch's MinHashLSH picks them."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return lsh.b, lsh.r


def band_keys(values: np.ndarray, b: int, r: int) -> np.ndarray:
    """(n, b) uint32 keys: band j of a sketch is a hash of its values ``[j*r, (j+1)*r)``."""
    v = np.asarray(values, np.uint64)[:, : b * r].reshape(len(values), b, r)
    acc = np.zeros((len(values), b), np.uint64)
    for i in range(r):
        acc += v[:, :, i] * _MULT[i % len(_MULT)]
    acc ^= acc >> _S
    acc *= _MULT[5]
    acc ^= acc >> _S
    return (acc >> np.uint64(32)).astype(np.uint32)


def _expand(lo: np.ndarray, hi: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """(query index, position) for every position in [lo, hi) of every query, at most ``cap`` per query."""
    cnt = np.minimum(hi - lo, cap)
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    qi = np.repeat(np.arange(len(lo)), cnt)
    pos = np.repeat(lo, cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    return qi, pos


def _unique_pairs(qi: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(qi) == 0:
        return qi.astype(np.int64), rows.astype(np.int64)
    key = np.sort((qi.astype(np.uint64) << np.uint64(32)) | rows.astype(np.uint64))
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return (key >> np.uint64(32)).astype(np.int64), (key & np.uint64(0xFFFFFFFF)).astype(np.int64)


class ArrayBands:
    """Band tables as sorted arrays: a memory-mapped base on disk plus an in-memory delta."""

    def __init__(self, b: int, r: int, directory: Path | None = None, cap: int = BUCKET_CAP) -> None:
        self.b, self.r, self.directory, self.cap = b, r, directory, cap
        self._keys = np.zeros((b, 0), np.uint32)  # base: per band sorted keys, and their rows
        self._rows = np.zeros((b, 0), np.uint32)
        self._dk: list[np.ndarray] = []  # delta: (m, b) keys per added chunk
        self._dr: list[np.ndarray] = []
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._keys.shape[1] + sum(len(r) for r in self._dr)

    def add(self, rows: np.ndarray, values: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self._dk.append(band_keys(values, self.b, self.r))
        self._dr.append(np.asarray(rows, np.uint32))
        self._sorted = None

    def _delta(self) -> tuple[np.ndarray, np.ndarray]:
        """The delta as (b, m) sorted keys and rows (sorted once after a change)."""
        if self._sorted is None:
            if not self._dr:
                self._sorted = (np.zeros((self.b, 0), np.uint32), np.zeros((self.b, 0), np.uint32))
            else:
                k = np.concatenate(self._dk).T
                r = np.concatenate(self._dr)
                order = np.argsort(k, axis=1, kind="stable")
                self._sorted = (np.take_along_axis(k, order, 1), r[order])
        return self._sorted

    def query(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index, row) pairs sharing at least one band (deduplicated)."""
        keys = band_keys(values, self.b, self.r)
        out_q: list[np.ndarray] = []
        out_r: list[np.ndarray] = []
        for tk, tr in ((self._keys, self._rows), self._delta()):
            if tk.shape[1] == 0:
                continue
            for j in range(self.b):
                col, rows = tk[j], tr[j]
                lo = np.searchsorted(col, keys[:, j], "left")
                hi = np.searchsorted(col, keys[:, j], "right")
                qi, pos = _expand(lo, hi, self.cap)
                if len(qi):
                    out_q.append(qi)
                    out_r.append(np.asarray(rows[pos], np.int64))
        if not out_q:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return _unique_pairs(np.concatenate(out_q), np.concatenate(out_r))

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Merge the delta into the base and write it (band by band, so memory stays ~ one band)."""
        from numpy.lib.format import open_memmap

        if not self._dr and (directory / "bkeys.npy").is_file():
            return
        dk, dr = self._delta()
        n = self._keys.shape[1] + dk.shape[1]
        tk = directory / "bkeys.tmp.npy"
        tr = directory / "brows.tmp.npy"
        out_k = open_memmap(tk, mode="w+", dtype=np.uint32, shape=(self.b, n))
        out_r = open_memmap(tr, mode="w+", dtype=np.uint32, shape=(self.b, n))
        for j in range(self.b):
            k = np.concatenate([self._keys[j], dk[j]])
            r = np.concatenate([self._rows[j], dr[j]])
            order = np.argsort(k, kind="stable")
            out_k[j] = k[order]
            out_r[j] = r[order]
        out_k.flush()
        out_r.flush()
        del out_k, out_r
        os.replace(tk, directory / "bkeys.npy")
        os.replace(tr, directory / "brows.npy")
        self._keys = np.load(directory / "bkeys.npy", mmap_mode="r")
        self._rows = np.load(directory / "brows.npy", mmap_mode="r")
        self._dk, self._dr, self._sorted = [], [], None

    @classmethod
    def load(cls, directory: Path, b: int, r: int) -> ArrayBands:
        self = cls(b, r, directory)
        if (directory / "bkeys.npy").is_file():
            self._keys = np.load(directory / "bkeys.npy", mmap_mode="r")
            self._rows = np.load(directory / "brows.npy", mmap_mode="r")
            if self._keys.shape[0] != b:
                raise ValueError(f"band tables in {directory} have {self._keys.shape[0]} bands, expected {b}")
        return self


class RedisBands:
    """Band tables in Redis: key ``<prefix>b:<band><shard>`` holds (low key bits u16, row u32) pairs, appended.

    The band keys are :func:`band_keys` (as in :class:`ArrayBands`), and a bucket answers its first
    ``cap`` rows in insertion order (as a saved :class:`ArrayBands` does), so both layouts give the
    same candidates for the same outputs added in the same order.

    Nine lookups in ten find nothing (most dataset records were never served), and each costs Redis
    about a microsecond plus its shard's bytes. So writers also set a presence bit per (band, key) in
    a ``2^FILTER_BITS``-bit map (``f:<chunk>`` strings, ``f:v`` its version); a reader keeps a copy
    (64 MB, read again when the version moved) and sends only lookups whose bit is set: ~7% false
    positives at a million distinct outputs, never a false negative.
    """

    NAME_W = 2 + 6  # "b:" + band (2 hex digits) + shard (4 hex digits)

    def __init__(self, io: RedisIO, b: int, r: int, cap: int = BUCKET_CAP) -> None:
        if b > 0xFF or SHARD_BITS != 16:
            raise ValueError("band/shard numbers must fit the key names")
        self.io, self.b, self.r, self.cap = io, b, r, cap
        self._salt = ((np.arange(b, dtype=np.uint64) * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF))
        self._filter: np.ndarray | None = None
        self._filter_ver: bytes | None = None
        self._made: set[int] = set()  # filter chunks this process has allocated

    def _names(self, keys: np.ndarray) -> np.ndarray:
        """Key-name suffixes of the flattened (n, b) band keys."""
        band = np.tile(np.arange(self.b, dtype=np.uint64), len(keys))
        shard = keys.reshape(-1).astype(np.uint64) >> np.uint64(32 - SHARD_BITS)
        return names("b:", (band << np.uint64(16)) | shard, 6)

    @staticmethod
    def _low(keys: np.ndarray) -> np.ndarray:
        """The key bits below the shard's (the shard's name holds the rest)."""
        return (keys.reshape(-1) & np.uint32(0xFFFF)).astype("<u2")

    def _bits(self, keys: np.ndarray) -> np.ndarray:
        """Presence-map bit of each flattened (n, b) band key."""
        return ((keys.astype(np.uint64) ^ self._salt) >> np.uint64(32 - FILTER_BITS)).reshape(-1)

    def add(self, rows: np.ndarray, values: np.ndarray) -> None:
        if len(rows) == 0:
            return
        keys = band_keys(values, self.b, self.r)
        flat_rows = np.repeat(np.asarray(rows, "<u4"), self.b)  # row-major: rows ascend within each shard
        self.io.append(records(self._names(keys), self._low(keys), flat_rows), self.NAME_W)
        bits = np.sort(self._bits(keys))
        chunk = bits // np.uint64(FILTER_CHUNK)
        new = sorted(set(np.unique(chunk).tolist()) - self._made)
        if new:  # allocate a chunk whole (plus a spare byte, so doing it again never clears a bit)
            pipe = self.io.r.pipeline(transaction=False)
            for c in new:
                pipe.setrange(self.io.key(name("f:", c, 3)), FILTER_CHUNK // 8, b"\0")
            pipe.execute()
            self._made.update(new)
        offs = (bits % np.uint64(FILTER_CHUNK)).astype("<u4")
        self.io.setbits(records(names("f:", chunk, 3), offs), 5, FILTER_CHUNK, self.io.key("f:v"))

    def _present(self, keys: np.ndarray) -> np.ndarray:
        ver = self.io.r.get(self.io.key("f:v"))
        if self._filter is None or ver != self._filter_ver:
            self._filter, self._filter_ver = self._read_filter(), ver  # (a write meanwhile moves the version)
        bits = self._bits(keys)
        return ((self._filter[bits >> np.uint64(3)] >> (np.uint64(7) - (bits & np.uint64(7))).astype(np.uint8))
                & 1).astype(bool)

    def _read_filter(self) -> np.ndarray:
        """The presence map as one bit array (chunk after chunk: bit i is bit i % 8 from the top of byte i / 8)."""
        width = FILTER_CHUNK // 8
        n = -(-(1 << FILTER_BITS) // FILTER_CHUNK)
        out = np.zeros(n * width, np.uint8)
        for lo in range(0, n, 64):
            got = self.io.r.mget([self.io.key(name("f:", c, 3)) for c in range(lo, min(n, lo + 64))])
            for c, v in enumerate(got, lo):
                if v:
                    out[c * width : (c + 1) * width] = np.frombuffer(v, np.uint8, width)
        return out

    def query(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index, row) pairs sharing at least one band (deduplicated); one script call per chunk."""
        if len(values) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys = band_keys(values, self.b, self.r)
        sel = np.flatnonzero(self._present(keys))
        recs = records(self._names(keys)[sel], self._low(keys)[sel], (sel // self.b).astype("<u4"))
        pairs = self.io.scan(recs, self.NAME_W, 2, self.cap)
        return _unique_pairs(pairs[:, 0], pairs[:, 1])
