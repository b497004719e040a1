"""LSH band tables for the output index: datasketch's banding, stored as sorted numpy arrays or in Redis.

The banding (``b`` bands of ``r`` MinHash values, chosen by datasketch's ``MinHashLSH`` for the
threshold and false-positive/negative weights) is datasketch's; only the storage differs by layout:

- :class:`ArrayBands` (embedded index): per band, the band keys of every stored output in one sorted
  ``uint32`` array with the matching rows. On disk they are two ``.npy`` files read memory-mapped, so a
  trace touches only the pages it searches; a query is one ``np.searchsorted`` per band for a whole batch.
  datasketch's in-memory storage keeps one Python set per bucket, which at a million outputs and 42 bands
  is tens of millions of objects (several GB, minutes to unpickle); this layout is ~8 bytes per output
  and band. New rows live in a small in-memory delta until :meth:`ArrayBands.save` merges them in.
- :class:`DatasketchBands` (Redis layout): datasketch's ``MinHashLSH`` with Redis storage, shared by
  every process that opens the same prefix.

Both answer a batch query with flat arrays ``(query index, row)``; a bucket holding more than ``cap``
rows (one canned answer stored thousands of times) contributes its first ``cap`` rows.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHashLSH

BUCKET_CAP = 100
_MULT = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                  0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB], np.uint64)
_S = np.uint64(33)


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


class DatasketchBands:
    """datasketch's MinHashLSH (e.g. with Redis storage) behind the same batch interface."""

    def __init__(self, lsh: MinHashLSH, minhash: Callable[[np.ndarray], Any]) -> None:
        self.lsh, self._minhash = lsh, minhash
        self.b, self.r = lsh.b, lsh.r

    def add(self, rows: np.ndarray, values: np.ndarray) -> None:
        with self.lsh.insertion_session(buffer_size=len(rows) * self.lsh.b + 16) as session:
            for row, v in zip(rows, values):
                session.insert(int(row), self._minhash(v), check_duplication=False)

    def query(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One ``getmany`` per band for the whole batch (a pipeline per band on Redis)."""
        out_q: list[int] = []
        out_r: list[int] = []
        for (start, end), table in zip(self.lsh.hashranges, self.lsh.hashtables):
            keys = [self.lsh._H(v[start:end]) for v in values]
            for i, found in enumerate(table.getmany(*keys)):
                for k in list(found)[:BUCKET_CAP] if found else ():
                    out_q.append(i)
                    out_r.append(pickle.loads(k) if self.lsh.prepickle else k)
        return _unique_pairs(np.asarray(out_q, np.int64), np.asarray(out_r, np.int64))
