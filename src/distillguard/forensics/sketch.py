"""MinHash sketches of normalised texts, computed for many texts at once, and the scores of two sketches.

A sketch is datasketch's ``affine32`` MinHash (``MinHash(num_perm, seed, scheme="affine32")``) of the
text's set of k-token shingles, with each shingle's 32-bit hash as the hashed value; the test suite
checks the values equal datasketch's own ``update_batch``. Only the work is organised for bulk: every
token of a batch is hashed once (crc32 of its text, through a per-batch vocabulary), a shingle's hash
is a mix of its k token hashes (numpy, no shingle strings), shingle sets are deduplicated with one
``np.unique`` and the permutation minima are taken with ``np.minimum.reduceat`` over all texts of the
batch. So a batch costs a few numpy passes instead of thousands of Python calls per text.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasketch import MinHash

from .normalize import tokens

NUM_PERM = 128
PROMPT_PERM = 32  # prompts are compared on the first PROMPT_PERM hash values only
SHINGLE = 3
SEED = 1
CHUNK = 1 << 15  # shingles per permutation block (CHUNK x NUM_PERM uint32 = 16 MB)

_U32 = np.uint64(0xFFFFFFFF)
_MULT = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                  0x85EBCA77C2B2AE63], np.uint64)  # per-position multipliers of the token hashes (odd)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_F = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def _identity(x: int) -> int:
    return x


def _fmix(h: np.ndarray, consts: tuple[Any, Any, Any, Any]) -> np.ndarray:
    """MurmurHash3's finalizer with the given (shift 1, multiplier 1, shift 2, multiplier 2); the array's dtype
    (uint64 or uint32) sets the word size."""
    s1, m1, s2, m2 = consts
    h = h ^ (h >> s1)
    h = h * m1
    h = h ^ (h >> s2)
    h = h * m2
    return h ^ (h >> s1)


_FMIX64 = (_S33, _M1, _S33, _M2)  # the 64-bit finalizer
_FMIX32 = _F  # the 32-bit one, as datasketch's affine32 scheme applies it before the permutations


def _shingle_mix(th: np.ndarray) -> np.ndarray:
    """32-bit shingle hashes from (shingles x k) token hashes (uint64)."""
    acc = np.zeros(len(th), np.uint64)
    for j in range(th.shape[1]):
        acc += th[:, j] * _MULT[j % len(_MULT)]
    return (_fmix(acc + np.uint64(th.shape[1]), _FMIX64) >> np.uint64(32)).astype(np.uint32)


@dataclass(frozen=True, slots=True)
class Sketch:
    """A text's MinHash values, the size of its shingle set and (when kept) the shingle hashes and tokens."""

    values: np.ndarray  # uint32, NUM_PERM
    size: int
    hashes: np.ndarray | None = None  # the text's distinct shingle hashes (uint32, sorted)
    toks: list[str] | None = None  # the normalised tokens


@dataclass(frozen=True, slots=True)
class SketchBatch:
    """Sketches of many texts: ``values[i]`` and ``sizes[i]``, shingle hashes ``hashes[starts[i]:starts[i+1]]``."""

    values: np.ndarray  # (n, num_perm) uint32
    sizes: np.ndarray  # (n,) int64
    hashes: np.ndarray  # uint32, grouped by text
    starts: np.ndarray  # (n + 1,) int64
    toks: list[list[str]]

    def __len__(self) -> int:
        return len(self.sizes)

    def shingle_hashes(self, i: int) -> np.ndarray:
        return self.hashes[self.starts[i] : self.starts[i + 1]]

    def __getitem__(self, i: int) -> Sketch:
        return Sketch(self.values[i], int(self.sizes[i]), self.shingle_hashes(i), self.toks[i])

    def replace(self, idx: Sequence[int], other: SketchBatch) -> SketchBatch:
        """This batch with text ``idx[i]`` replaced by ``other``'s text ``i``."""
        values, sizes, toks = self.values.copy(), self.sizes.copy(), list(self.toks)
        parts = [self.shingle_hashes(i) for i in range(len(self))]
        for i, j in enumerate(idx):
            values[j], sizes[j], toks[j] = other.values[i], other.sizes[i], other.toks[i]
            parts[j] = other.shingle_hashes(i)
        starts = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=starts[1:])
        hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
        return SketchBatch(values, sizes, hashes.astype(np.uint32), starts, toks)


class Sketcher:
    """Turns texts into MinHash sketches; all sketches of one index come from one Sketcher."""

    def __init__(self, num_perm: int = NUM_PERM, k: int = SHINGLE, seed: int = SEED) -> None:
        self.num_perm, self.k, self.seed = num_perm, k, seed
        self._proto = MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity, scheme="affine32")
        a, b = self._proto.permutations
        self._a, self._b = np.asarray(a, np.uint32), np.asarray(b, np.uint32)
        self.empty = np.full(num_perm, np.iinfo(np.uint32).max, np.uint32)

    @property
    def proto(self) -> MinHash:
        """The empty datasketch MinHash every sketch equals after ``update_batch`` of the shingle hashes."""
        return self._proto

    def minhash(self, values: np.ndarray) -> MinHash:
        """A datasketch MinHash holding these values (for datasketch's LSH, e.g. on Redis)."""
        return MinHash(self.num_perm, self.seed, hashfunc=_identity, hashvalues=values,
                       permutations=self._proto.permutations, scheme="affine32")

    # ---- shingles ---------------------------------------------------------------------------------
    def _hash_tokens(self, token_lists: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(shingle hashes of every text, concatenated; the text index of each), shingles not deduplicated."""
        k = self.k
        lens = np.fromiter(map(len, token_lists), np.int64, len(token_lists))
        flat = [t for toks in token_lists for t in toks]
        vocab = {t: i for i, t in enumerate(dict.fromkeys(flat))}  # each distinct token hashed once
        tid_all = np.fromiter(map(vocab.__getitem__, flat), np.int64, len(flat))
        th = np.fromiter((zlib.crc32(t.encode()) for t in vocab), np.uint64, len(vocab))
        short: list[tuple[int, np.ndarray]] = []
        if ((lens > 0) & (lens < k)).any():  # a text of fewer than k tokens is one shingle of all its tokens
            offs = np.cumsum(lens) - lens
            short = [(int(i), tid_all[offs[i] : offs[i] + lens[i]]) for i in np.flatnonzero((lens > 0) & (lens < k))]
        ends = np.cumsum(lens)
        n_sh = np.maximum(lens - (k - 1), 0)
        # shingle j of text i starts at token ends[i] - lens[i] + j
        owner = np.repeat(np.arange(len(lens)), n_sh)
        first = np.arange(int(n_sh.sum())) - np.repeat(np.cumsum(n_sh) - n_sh, n_sh) + np.repeat(ends - lens, n_sh)
        sh = _shingle_mix(th[tid_all[first[:, None] + np.arange(k)]]) if len(first) else np.zeros(0, np.uint32)
        if short:
            extra = np.array([_shingle_mix(th[t][None, :])[0] for _, t in short], np.uint32)
            sh = np.concatenate([sh, extra])
            owner = np.concatenate([owner, np.array([i for i, _ in short], np.int64)])
        return sh, owner

    def shingle_hashes(self, toks: list[str]) -> np.ndarray:
        """The distinct shingle hashes of one token list (uint32, sorted)."""
        sh, _ = self._hash_tokens([toks])
        return np.unique(sh)  # (one text: small)

    def shingle_set(self, text: str) -> set[int]:
        """The text's set of shingle hashes."""
        return set(self.shingle_hashes(tokens(text)).tolist())

    # ---- sketches ---------------------------------------------------------------------------------
    def permuted(self, hv: np.ndarray) -> np.ndarray:
        """(shingles x permutations) permuted values of shingle hashes (min over rows = the sketch)."""
        h = _fmix(np.asarray(hv, np.uint32), _FMIX32)
        return h[:, None] * self._a + self._b

    def batch(self, texts: Sequence[str] | None = None, token_lists: Sequence[list[str]] | None = None) -> SketchBatch:
        """Sketches of many texts (or of already normalised token lists)."""
        toks = [tokens(t) for t in texts] if token_lists is None else list(token_lists)  # type: ignore[union-attr]
        n = len(toks)
        sh, owner = self._hash_tokens(toks)
        key = np.sort((owner.astype(np.uint64) << np.uint64(32)) | sh.astype(np.uint64))
        if len(key):
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        rec = (key >> np.uint64(32)).astype(np.int64)
        hashes = (key & _U32).astype(np.uint32)
        sizes = np.bincount(rec, minlength=n).astype(np.int64)
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(sizes, out=starts[1:])
        values = np.tile(self.empty, (n, 1))
        if len(hashes):
            h = _fmix(hashes, _FMIX32)
            live = np.flatnonzero(sizes)
            buf = np.empty((self.num_perm, min(CHUNK, len(h)) + 1), np.uint32)
            a, b = self._a[:, None], self._b[:, None]
            pos = 0
            while pos < len(live):  # blocks of whole texts with about CHUNK shingles each
                lo = starts[live[pos]]
                stop = max(int(np.searchsorted(starts[live + 1], lo + CHUNK, side="right")), pos + 1)
                rows = live[pos:stop]
                hi = starts[rows[-1] + 1]
                if hi - lo > buf.shape[1]:
                    buf = np.empty((self.num_perm, hi - lo), np.uint32)
                q = buf[:, : hi - lo]  # permutations x shingles: the min runs along contiguous rows
                np.multiply(a, h[lo:hi][None, :], out=q)
                np.add(q, b, out=q)
                values[rows] = np.minimum.reduceat(q, starts[rows] - lo, axis=1).T
                pos = stop
        return SketchBatch(values, sizes, hashes, starts, toks)

    def sketch(self, text: str) -> Sketch:
        return self.batch([text])[0]


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
