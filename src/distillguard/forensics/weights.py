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


class RedisShingleDF(ShingleDF):
    """The same counts in Redis (one string of big-endian uint32 counters, ``BITFIELD INCRBY``), so every
    process sharing a Redis index shares them. Read whole (32 MB) when first needed after a change."""

    OPS = 2000  # counter increments per BITFIELD call

    def __init__(self, client: Any, key: str, bits: int = DF_BITS) -> None:
        self.bits, self.r, self.key = bits, client, key
        self._counts: np.ndarray | None = None
        self._docs: int | None = None

    @property  # type: ignore[override]
    def counts(self) -> np.ndarray:
        if self._counts is None:
            raw = self.r.get(self.key) or b""
            n = 2 << self.bits
            buf = np.zeros(n, ">u4")
            have = np.frombuffer(raw[: 4 * n], ">u4")
            buf[: len(have)] = have
            self._counts = buf.astype(np.uint32).reshape(2, n // 2)
        return self._counts

    @property  # type: ignore[override]
    def docs(self) -> int:
        if self._docs is None:
            self._docs = int(self.r.get(self.key + ":docs") or 0)
        return self._docs

    def add_grouped(self, hashes: np.ndarray, starts: np.ndarray) -> None:
        docs = int(np.count_nonzero(np.diff(starts)))
        pipe = self.r.pipeline(transaction=False)
        if len(hashes):
            r0, r1 = self._slots(hashes)
            slots, counts = np.unique(np.concatenate([r0, r1 + (1 << self.bits)]), return_counts=True)
            for lo in range(0, len(slots), self.OPS):
                args: list[Any] = []
                for slot, c in zip(slots[lo : lo + self.OPS].tolist(), counts[lo : lo + self.OPS].tolist()):
                    args += ["INCRBY", "u32", f"#{slot}", c]
                pipe.execute_command("BITFIELD", self.key, *args)
        pipe.incrby(self.key + ":docs", docs)
        pipe.execute()
        self._counts, self._docs = None, None

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
