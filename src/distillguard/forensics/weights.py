"""Discounting common text: document frequencies of shingles over the stored outputs, and weighted matches.

Standard code, templated tool answers and canned replies share many shingles with many stored outputs;
a match made of such shingles says little. At index time every stored output adds its shingle set to
:class:`ShingleDF` (a count-min table of 32-bit shingle hashes, so it stays a fixed size at any scale).
At verification time the shingles that made the MinHash positions agree are recovered from the query
(each permutation's minimum in the query is a specific shingle) and weighted by an IDF-like weight in
(0, 1]: 1 for a shingle only the matched output has, falling as more stored outputs contain it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .redisio import RedisIO, name, names, records
from .sketch import Sketcher

DF_BITS = 22  # 2 rows x 4M uint32 counters = 32 MB
_MIX = np.uint64(0x9E3779B97F4A7C15)


class ShingleDF:
    """How many stored outputs contain each shingle (count-min sketch over shingle hashes; never undercounts)."""

    def __init__(self, bits: int = DF_BITS) -> None:
        self.bits = bits
        self.counts = np.zeros((2, 1 << bits), np.uint32)
        self.docs = 0

    def _slots(self, hv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = hv.astype(np.uint64)
        mask = np.uint64((1 << self.bits) - 1)
        r0 = h & mask
        r1 = ((h * _MIX) >> np.uint64(64 - self.bits)) & mask
        return r0.astype(np.int64), r1.astype(np.int64)

    def add(self, docs: list[np.ndarray]) -> None:
        """Count each document's (unique) shingle hashes once."""
        docs = [np.unique(d) for d in docs if len(d)]
        self.docs += len(docs)
        if not docs:
            return
        r0, r1 = self._slots(np.concatenate(docs))
        n = 1 << self.bits
        self.counts[0] += np.bincount(r0, minlength=n).astype(np.uint32)
        self.counts[1] += np.bincount(r1, minlength=n).astype(np.uint32)

    def add_grouped(self, hashes: np.ndarray, starts: np.ndarray) -> None:
        """Count documents given as distinct shingle hashes grouped by ``starts`` (a sketch batch)."""
        self.docs += int(np.count_nonzero(np.diff(starts)))
        if len(hashes) == 0:
            return
        r0, r1 = self._slots(hashes)
        n = 1 << self.bits
        self.counts[0] += np.bincount(r0, minlength=n).astype(np.uint32)
        self.counts[1] += np.bincount(r1, minlength=n).astype(np.uint32)

    def df(self, hv: np.ndarray) -> np.ndarray:
        r0, r1 = self._slots(np.asarray(hv))
        return np.minimum(self.counts[0][r0], self.counts[1][r1])

    def weights(self, hv: np.ndarray) -> np.ndarray:
        """IDF-like weight in (0, 1]: log(N / df) / log(N), df counted at least 1."""
        n = max(self.docs, 2)
        df = np.maximum(self.df(hv), 1).astype(np.float64)
        return np.clip(np.log(n / df) / math.log(n), 0.02, 1.0)

    # ---- persistence --------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        tmp = directory / "df.tmp.npz"
        np.savez(tmp, counts=self.counts, docs=np.array([self.docs]))
        os.replace(tmp, directory / "df.npz")

    @classmethod
    def load(cls, directory: Path) -> ShingleDF | None:
        path = directory / "df.npz"
        if not path.is_file():
            return None
        z = np.load(path)
        self = cls(int(z["counts"].shape[1]).bit_length() - 1)
        self.counts = z["counts"].copy()
        self.docs = int(z["docs"][0])
        return self


DF_CHUNK = 32764  # counters per Redis string: 128 KB less a little, so no allocation slack
SPARSE_MAX = 50_000  # up to this many distinct counters a batch increments them one by one (BITFIELD)


class RedisShingleDF(ShingleDF):
    """The same counts in Redis, shared by every process that opens the index's prefix.

    The (2, 2^bits) counters are big-endian uint32 strings ``df:<chunk>`` of ``DF_CHUNK`` counters,
    with ``df:docs`` (documents counted) and ``df:v`` (a version bumped by every change). A small batch
    is added counter by counter (``BITFIELD INCRBY`` in one Lua call); a large one (a bulk index touches
    over a million counters per 2000 outputs, far too many single increments) rewrites the changed
    chunks from a local copy: optimistically, under ``WATCH`` of the version, re-reading the counters
    only when another writer changed them since this process last read or wrote them.
    """

    def __init__(self, io: RedisIO, bits: int = DF_BITS) -> None:
        self.bits, self.io, self.r = bits, io, io.r
        self._n = 2 << bits
        self._keys = [io.key(name("df:", c, 3)) for c in range(-(-self._n // DF_CHUNK))]
        self._ver_key, self._docs_key = io.key("df:v"), io.key("df:docs")
        self._flat: np.ndarray | None = None  # all counters, as of version _ver
        self._ver = -1
        self._docs: int | None = None

    def _load(self, pipe: Any) -> None:
        """Read every counter (``pipe`` in immediate mode: plain or watching)."""
        ver, raws, docs = int(pipe.get(self._ver_key) or 0), pipe.mget(self._keys), pipe.get(self._docs_key)
        flat = np.zeros(self._n, np.uint32)
        for c, raw in enumerate(raws):
            if raw:
                v = np.frombuffer(raw, ">u4")
                flat[c * DF_CHUNK : c * DF_CHUNK + len(v)] = v
        self._flat, self._ver, self._docs = flat, ver, int(docs or 0)

    @property  # type: ignore[override]
    def counts(self) -> np.ndarray:
        from redis.exceptions import WatchError

        if self._flat is None:
            with self.r.pipeline(transaction=True) as pipe:
                pipe.watch(self._ver_key)  # a consistent snapshot: retried if a writer commits meanwhile
                while True:
                    try:
                        self._load(pipe)
                        pipe.multi()
                        pipe.get(self._ver_key)
                        pipe.execute()
                        break
                    except WatchError:
                        pipe.watch(self._ver_key)
        assert self._flat is not None
        return self._flat.reshape(2, -1)

    @property  # type: ignore[override]
    def docs(self) -> int:
        if self._docs is None:
            self._docs = int(self.r.get(self._docs_key) or 0)
        return self._docs

    def add_grouped(self, hashes: np.ndarray, starts: np.ndarray) -> None:
        docs = int(np.count_nonzero(np.diff(starts)))
        slots, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(hashes):
            r0, r1 = self._slots(hashes)
            slots, counts = np.unique(np.concatenate([r0, r1 + (1 << self.bits)]), return_counts=True)
        if len(slots) <= SPARSE_MAX:
            recs = records(names("df:", (slots // DF_CHUNK).astype(np.uint64), 3),
                           (slots % DF_CHUNK).astype("<u4"), counts.astype("<u4"))
            self.io.bitadd(recs, 6, DF_CHUNK, self._ver_key, self._docs_key, docs)
            self._flat, self._docs = None, None
        else:
            self._add_dense(slots, counts, docs)

    def _add_dense(self, slots: np.ndarray, counts: np.ndarray, docs: int) -> None:
        from redis.exceptions import WatchError

        touched = np.unique(slots // DF_CHUNK).tolist()
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._ver_key)
                    if self._flat is None or int(pipe.get(self._ver_key) or 0) != self._ver:
                        self._load(pipe)
                    assert self._flat is not None
                    new = self._flat.copy()
                    new[slots] += counts.astype(np.uint32)
                    pipe.multi()
                    pipe.mset({self._keys[c]: new[c * DF_CHUNK : (c + 1) * DF_CHUNK].astype(">u4").tobytes()
                               for c in touched})
                    pipe.incr(self._ver_key)
                    pipe.incrby(self._docs_key, docs)
                    _, ver, total = pipe.execute()
                    break
                except WatchError:
                    self._flat = None
        self._flat, self._ver, self._docs = new, int(ver), int(total)

    def add(self, docs: list[np.ndarray]) -> None:
        docs = [np.unique(d) for d in docs if len(d)]
        if docs:
            lens = np.array([len(d) for d in docs])
            self.add_grouped(np.concatenate(docs), np.concatenate(([0], np.cumsum(lens))))

    def save(self, directory: Path) -> None:  # every add is already stored in Redis
        return None


@dataclass(frozen=True, slots=True)
class Weighted:
    """A candidate match judged on distinctive content."""

    factor: float  # mean weight of the agreeing positions / mean weight of all query positions (≤ 1 used)
    distinct: float  # estimated shared shingles, weighted (how much distinctive text is shared)
    agreeing: int  # MinHash positions that agree


def weigh(sketcher: Sketcher, hv: np.ndarray, query_sig: np.ndarray, stored_sig: np.ndarray,
          df: ShingleDF, shared: float) -> Weighted:
    """Weight the agreeing MinHash positions of a query and a stored sketch by their shingles' rarity.

    ``hv`` are the query's distinct shingle hashes; ``shared`` is the (unweighted) estimated number of
    shared shingles; ``distinct`` scales it by the mean weight of the shingles behind the agreeing positions.
    """
    if len(hv) == 0:
        return Weighted(0.0, 0.0, 0)
    arg = sketcher.permuted(hv).argmin(axis=0)  # per permutation, the query shingle that is its minimum
    w = df.weights(hv)[arg]
    stored_sig = np.asarray(stored_sig)
    agree = np.asarray(query_sig)[: len(stored_sig)].astype(stored_sig.dtype) == stored_sig
    n_agree = int(agree.sum())
    if n_agree == 0:
        return Weighted(0.0, 0.0, 0)
    mean_agree = float(w[: len(agree)][agree].mean())
    mean_all = float(w.mean())
    return Weighted(mean_agree / mean_all if mean_all else 0.0, shared * mean_agree, n_agree)
