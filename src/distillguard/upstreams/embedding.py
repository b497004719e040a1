"""Deterministic text embeddings for the replay upstream: signed feature hashing of word 1–2-grams and
character 3–5-grams (within word boundaries), sublinear tf, L2-normalised. Texts sharing words and
word pieces get similar vectors; the same text always gets the same vector, in any process.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from .replay_index import TOKEN_PATTERN, normalise

DEFAULT_DIMENSIONS = 1536
CHAR_WEIGHT = 0.5  # character n-grams relative to words (they outnumber words several times)
MODEL_DIMENSIONS = {"text-embedding-3-large": 3072, "text-embedding-3-small": 1536, "text-embedding-ada-002": 1536}


def default_dimensions(model: str) -> int:
    for prefix, dims in MODEL_DIMENSIONS.items():
        if model.startswith(prefix):
            return dims
    return DEFAULT_DIMENSIONS


@lru_cache(maxsize=16)
def _vectorizers(dims: int) -> tuple[HashingVectorizer, HashingVectorizer]:
    words = HashingVectorizer(n_features=dims, token_pattern=TOKEN_PATTERN, ngram_range=(1, 2),
                              alternate_sign=True, norm=None, lowercase=False, dtype=np.float64)
    chars = HashingVectorizer(n_features=dims, analyzer="char_wb", ngram_range=(3, 5),
                              alternate_sign=True, norm=None, lowercase=False, dtype=np.float64)
    return words, chars


def _sublinear(x: sp.csr_matrix) -> sp.csr_matrix:
    x = sp.csr_matrix(x)
    x.data = np.sign(x.data) * np.log1p(np.abs(x.data))
    return x


def embed_texts(texts: Sequence[str], dims: int = DEFAULT_DIMENSIONS) -> np.ndarray:
    """One unit-length float32 row per text (an all-zero text gets a vector from its raw bytes)."""
    if dims < 1:
        raise ValueError("dims must be positive")
    norm_texts = [normalise(t) for t in texts]
    words, chars = _vectorizers(dims)
    m = (_sublinear(words.transform(norm_texts)) + CHAR_WEIGHT * _sublinear(chars.transform(norm_texts))).toarray()
    for i, row in enumerate(m):
        if not row.any():  # nothing word-like (e.g. only punctuation): hash the raw text
            m[i] = chars.transform([texts[i] or " "]).toarray()[0]
            if not m[i].any():
                m[i, hash_index(texts[i], dims)] = 1.0
    n = np.linalg.norm(m, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (m / n).astype(np.float32)


def hash_index(text: str, dims: int) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little") % dims
