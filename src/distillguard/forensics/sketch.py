"""MinHash sketches of normalised texts (datasketch), and the scores computed from two sketches."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from .normalize import shingles, tokens

NUM_PERM = 128
PROMPT_PERM = 32  # prompts are compared on the first PROMPT_PERM hash values only
SHINGLE = 3
SEED = 1


def _hash32(b: bytes) -> int:
    return zlib.crc32(b)


@dataclass(frozen=True, slots=True)
class Sketch:
    """A text's MinHash and the size of its shingle set (for containment estimates)."""

    minhash: MinHash
    size: int

    @property
    def values(self) -> np.ndarray:
        return self.minhash.hashvalues


class Sketcher:
    """Turns texts into MinHash sketches; all sketches of one index come from one Sketcher."""

    def __init__(self, num_perm: int = NUM_PERM, k: int = SHINGLE, seed: int = SEED) -> None:
        self.num_perm, self.k, self.seed = num_perm, k, seed
        self._proto = MinHash(num_perm=num_perm, seed=seed, hashfunc=_hash32)

    @property
    def proto(self) -> MinHash:
        """The empty MinHash every sketch starts from (its permutations and hash function)."""
        return self._proto

    def shingle_set(self, text: str) -> set[str]:
        return shingles(tokens(text), self.k)

    def sketch(self, text: str) -> Sketch:
        return self.sketch_set(self.shingle_set(text))

    def sketch_set(self, sh: set[str]) -> Sketch:
        m = self._proto.copy()
        if sh:
            m.update_batch([s.encode() for s in sh])
        return Sketch(m, len(sh))

    def sketch_many(self, texts: Iterable[str]) -> list[Sketch]:
        return [self.sketch(t) for t in texts]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two sketches' hash values."""
    n = min(len(a), len(b))
    return float(np.count_nonzero(a[:n] == b[:n])) / n if n else 0.0


def overlap(j: float, size_a: int, size_b: int) -> float:
    """Estimated size of the intersection of two sets from their Jaccard and sizes."""
    return j * (size_a + size_b) / (1.0 + j) if j > 0 else 0.0


def containment(j: float, size_a: int, size_b: int) -> float:
    """Estimated share of set a that is also in set b."""
    return min(1.0, overlap(j, size_a, size_b) / size_a) if size_a else 0.0
