"""Finding the recorded answer for a conversation: exact lookup, then lexical nearest neighbour.

Every answer point of the corpus (the conversation so far → the recorded answer) gets two exact keys
(normalised non-system turns; normalised user/tool turns only, so an edited or watermarked assistant
turn in the client's history still matches) and a TF-IDF vector. The vector mixes the last user turn
(weight 1) with the earlier turns (weight ``HISTORY_WEIGHT``), both from hashed word 1–2-grams
(CJK characters count as words). Nearest = highest cosine, via an inverted index.

The index is built once per corpus content and saved as plain ``.npy`` arrays under
``cache_dir/replay-v<version>-<corpus hash>/``; later loads memory-map them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from . import corpus as corpus_mod
from .corpus import content_text

log = logging.getLogger("distillguard.upstreams.replay")

INDEX_VERSION = 1
N_FEATURES = 1 << 20
HISTORY_WEIGHT = 0.5
PRIMARY_CHARS = 4000
HISTORY_CHARS = 1500
HISTORY_TURNS = 6
LRU_SIZE = 4096
CANDIDATES = 48  # exact rescoring of this many lexical candidates (+ k)
RARE_DF = 0.02  # features in at most this share of answer points generate candidates
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN_PATTERN = rf"(?u)[{_CJK}]|[^\W{_CJK}]+"
_ARRAYS = ("answers", "answer_offsets", "record_ids", "record_offsets", "key_hashes", "key_units",
           "post_indptr", "post_units", "post_weights", "row_indptr", "row_features", "row_weights", "idf")

_vectorizer = HashingVectorizer(
    n_features=N_FEATURES, token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), alternate_sign=False,
    norm=None, lowercase=False, dtype=np.float32,
)


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the form exact keys are computed on."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _key(kind: bytes, parts: Iterable[str]) -> int:
    h = hashlib.blake2b(kind, digest_size=8)
    for p in parts:
        h.update(b"\x1f" + p.encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "little")


@dataclass(frozen=True, slots=True)
class Query:
    """What the index needs from a conversation."""

    primary: str  # the last user (or tool) turn
    history: str  # earlier turns, most recent last
    full_key: int
    user_key: int

    @classmethod
    def from_messages(cls, messages: Sequence[dict[str, Any]]) -> "Query":
        turns = [(str(m.get("role", "user")), content_text(m.get("content"))) for m in messages
                 if isinstance(m, dict)]
        convo = [(r, t) for r, t in turns if r not in ("system", "developer")]
        if not convo:
            convo = turns
        p = max((i for i, (r, _) in enumerate(convo) if r in ("user", "tool")), default=len(convo) - 1)
        primary = convo[p][1] if convo else ""
        hist = [t[:HISTORY_CHARS] for i, (_, t) in enumerate(convo) if i != p][-HISTORY_TURNS:]
        full = _key(b"F", (f"{r}\x1e{normalise(t)}" for r, t in convo))
        user = _key(b"U", (f"{r}\x1e{normalise(t)}" for r, t in convo if r in ("user", "tool")))
        return cls(primary[:PRIMARY_CHARS], "\n".join(hist), full, user)

    @classmethod
    def from_prompt(cls, prompt: str) -> "Query":
        return cls.from_messages([{"role": "user", "content": prompt}])


def query_vector(q: Query, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit-length vector of one query as (sorted feature ids, weights); same values as ``_vectors``."""
    x = _vectorizer.transform([normalise(q.primary), normalise(q.history)])
    ind = x.indices.astype(np.int64)
    d = (1.0 + np.log(x.data.astype(np.float64))) * idf[ind]
    for row, w in ((0, 1.0), (1, HISTORY_WEIGHT)):
        seg = slice(x.indptr[row], x.indptr[row + 1])
        norm = float(np.sqrt(np.dot(d[seg], d[seg])))
        if norm > 0:
            d[seg] *= w / norm
    feats, inv = np.unique(ind, return_inverse=True)
    vals = np.bincount(inv, weights=d, minlength=len(feats))
    norm = float(np.sqrt(np.dot(vals, vals)))
    return feats, (vals / norm if norm > 0 else vals)


def _vectors(queries: Sequence[Query], idf: np.ndarray) -> sp.csr_matrix:
    """Unit-length TF-IDF vectors (sublinear tf) mixing primary and history, one row per query."""
    n = len(queries)
    counts = _vectorizer.transform([normalise(q.primary) for q in queries]
                                   + [normalise(q.history) for q in queries])
    counts = sp.csr_matrix(counts, dtype=np.float32)
    counts.data = (1.0 + np.log(counts.data)) * idf[counts.indices]
    normalize(counts, copy=False)
    mixed = counts[:n] + HISTORY_WEIGHT * counts[n:]
    normalize(mixed, copy=False)
    return sp.csr_matrix(mixed, dtype=np.float32)


_built: dict[str, "ReplayIndex"] = {}  # corpus fingerprint → index built by this process
_build_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Match:
    unit: int
    score: float
    how: str  # "exact" | "nearest" | "fallback"


class ReplayIndex:
    """Answer points of a corpus, searchable by conversation. Read-only once built; thread-safe."""

    builds = 0  # process-wide count of index builds (observability, tests)

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Path | None = None) -> None:
        self._a = arrays
        self.meta = meta
        self.path = path
        self.size = int(len(arrays["answer_offsets"]) - 1)
        self._lru: OrderedDict[tuple[int, int, int], list[Match]] = OrderedDict()
        self._lock = threading.Lock()

    # ---- access ---------------------------------------------------------------------------------
    def answer(self, unit: int) -> str:
        off = self._a["answer_offsets"]
        return bytes(self._a["answers"][off[unit]:off[unit + 1]]).decode("utf-8")

    def record_id(self, unit: int) -> str:
        off = self._a["record_offsets"]
        return bytes(self._a["record_ids"][off[unit]:off[unit + 1]]).decode("utf-8")

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    # ---- search ----------------------------------------------------------------------------------
    def exact(self, q: Query) -> int | None:
        keys, units = self._a["key_hashes"], self._a["key_units"]
        for k in (q.full_key, q.user_key):
            i = int(np.searchsorted(keys, np.uint64(k)))
            if i < len(keys) and int(keys[i]) == k:
                return int(units[i])
        return None

    def _postings(self, feats: np.ndarray, qw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(unit, weight × query weight) for every posting of the given features."""
        indptr = self._a["post_indptr"]
        starts = indptr[feats].astype(np.int64)
        lengths = indptr[feats + 1].astype(np.int64) - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        pos = np.arange(total, dtype=np.int64) + offsets
        return self._a["post_units"][pos], self._a["post_weights"][pos] * np.repeat(qw, lengths)

    def scores(self, q: Query) -> np.ndarray:
        """Exact cosine similarity of the query to every answer point (reads every posting)."""
        feats, qw = query_vector(q, self._a["idf"])
        units, w = self._postings(feats, qw)
        return np.bincount(units, weights=w, minlength=self.size)

    def _rescore(self, cands: np.ndarray, feats: np.ndarray, qw: np.ndarray) -> np.ndarray:
        """Exact cosine of the query to a few answer points, from their stored vectors."""
        indptr = self._a["row_indptr"]
        starts = indptr[cands].astype(np.int64)
        lengths = indptr[cands + 1].astype(np.int64) - starts
        total = int(lengths.sum())
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        pos = np.arange(total, dtype=np.int64) + offsets
        row_feats = self._a["row_features"][pos]
        i = np.minimum(np.searchsorted(feats, row_feats), len(feats) - 1)
        hit = feats[i] == row_feats
        prod = np.where(hit, qw[i] * self._a["row_weights"][pos], 0.0)
        return np.bincount(np.repeat(np.arange(len(cands)), lengths), weights=prod, minlength=len(cands))

    def _nearest(self, q: Query, k: int, exclude: int | None) -> list[tuple[int, float]]:
        """The k answer points of highest cosine (> 0), best first, ties to the earlier point.

        Candidates come from the postings of the query's selective features (df ≤ ``rare_df``),
        then get exact scores; a query without selective features reads every posting.
        """
        feats, qw = query_vector(q, self._a["idf"])
        if len(feats) == 0:
            return []
        indptr = self._a["post_indptr"]
        df = indptr[feats + 1] - indptr[feats]
        rare = (df > 0) & (df <= int(self.meta["rare_df"]))
        if rare.any():
            units, w = self._postings(feats[rare], qw[rare])
            partial = np.bincount(units, weights=w)
            cands = np.flatnonzero(partial)
            if len(cands) > CANDIDATES + k:
                keep = np.argpartition(-partial[cands], CANDIDATES + k - 1)[: CANDIDATES + k]
                cands = cands[keep]
            exact = self._rescore(cands, feats, qw)
        else:
            units, w = self._postings(feats, qw)
            scores = np.bincount(units, weights=w, minlength=self.size)
            cands = np.flatnonzero(scores)
            exact = scores[cands]
        if exclude is not None:
            exact = np.where(cands == exclude, 0.0, exact)
        order = np.lexsort((cands, -exact))[:k]
        return [(int(cands[i]), float(exact[i])) for i in order if exact[i] > 0]

    def search(self, q: Query, k: int = 1) -> list[Match]:
        """Up to ``k`` answer points, best first: the exact match (if any), then nearest by cosine.

        Deterministic: ties go to the earlier answer point; a query sharing no word with the corpus
        gets answer points chosen by its hash.
        """
        k = max(1, min(int(k), self.size))
        ck = (q.full_key, q.user_key, k)
        with self._lock:
            hit = self._lru.get(ck)
            if hit is not None:
                self._lru.move_to_end(ck)
                return hit
        out = self._search(q, k)
        with self._lock:
            self._lru[ck] = out
            if len(self._lru) > LRU_SIZE:
                self._lru.popitem(last=False)
        return out

    def _search(self, q: Query, k: int) -> list[Match]:
        out: list[Match] = []
        exact = self.exact(q)
        if exact is not None:
            out.append(Match(exact, 1.0, "exact"))
        if k > len(out):
            out += [Match(u, s, "nearest") for u, s in self._nearest(q, k - len(out), exact)]
        # not enough lexical neighbours: fill deterministically from the query's hash
        step = 7919 if self.size % 7919 else 7907
        start = (q.full_key ^ q.user_key) % self.size
        taken = {m.unit for m in out}
        j = 0
        while len(out) < k:
            u = (start + j * step) % self.size
            j += 1
            if u not in taken:
                taken.add(u)
                out.append(Match(u, 0.0, "fallback"))
        return out

    # ---- build / load ----------------------------------------------------------------------------
    @classmethod
    def load_or_build(cls, corpus_dir: Path | None, cache_dir: Path) -> "ReplayIndex":
        """The index of a corpus from ``cache_dir``; built (once per process and corpus) and saved if missing."""
        fp = corpus_mod.fingerprint(corpus_dir)
        path = Path(cache_dir) / f"replay-v{INDEX_VERSION}-{fp}"
        if (path / "meta.json").is_file():
            try:
                return cls.load(path)
            except (OSError, ValueError, KeyError) as e:
                log.warning("replay index cache at %s unreadable (%s); rebuilding", path, e)
        with _build_lock:
            index = _built.get(fp)
            if index is None:
                index = _built[fp] = cls.build(corpus_dir, fp)
        index.save(path)
        return index

    @classmethod
    def load(cls, path: Path) -> "ReplayIndex":
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("version") != INDEX_VERSION:
            raise ValueError("index version mismatch")
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _ARRAYS}
        return cls(arrays, meta, path)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", np.asarray(self._a[name]), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(self.meta, indent=1))
        try:
            os.rename(tmp, path)
        except OSError:  # another process won the race: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
        if self.path is None:
            self.path = path

    @classmethod
    def build(cls, corpus_dir: Path | None, fingerprint: str | None = None) -> "ReplayIndex":
        t0 = time.perf_counter()
        cls.builds += 1
        fp = fingerprint or corpus_mod.fingerprint(corpus_dir)
        answers: list[bytes] = []
        record_ids: list[bytes] = []
        queries: list[Query] = []
        n_records = 0
        for rec in corpus_mod.iter_corpus(corpus_dir):
            n_records += 1
            for point in corpus_mod.answer_points(rec):
                queries.append(Query.from_messages(point.context))
                answers.append(point.answer.encode("utf-8", "surrogatepass"))
                record_ids.append(point.record_id.encode("utf-8"))
        if not queries:
            raise ValueError("the corpus holds no answers")
        n = len(queries)
        # document frequencies over primary + history, then IDF
        counts = _vectorizer.transform([normalise(q.primary) + "\n" + normalise(q.history) for q in queries])
        df = np.bincount(sp.csr_matrix(counts).indices, minlength=N_FEATURES)
        idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        rows = _vectors(queries, idf)
        rows.sort_indices()
        vecs = rows.tocsc()
        vecs.sort_indices()
        # exact keys: (hash, unit) sorted; the first unit of each hash wins
        hashes = np.array([q.full_key for q in queries] + [q.user_key for q in queries], dtype=np.uint64)
        units = np.concatenate([np.arange(n), np.arange(n)]).astype(np.int32)
        order = np.lexsort((units, hashes))
        hashes, units = hashes[order], units[order]
        first = np.concatenate(([True], hashes[1:] != hashes[:-1]))
        arrays = {
            "answers": np.frombuffer(b"".join(answers), dtype=np.uint8),
            "answer_offsets": np.concatenate(([0], np.cumsum([len(a) for a in answers]))).astype(np.int64),
            "record_ids": np.frombuffer(b"".join(record_ids), dtype=np.uint8),
            "record_offsets": np.concatenate(([0], np.cumsum([len(r) for r in record_ids]))).astype(np.int64),
            "key_hashes": hashes[first],
            "key_units": units[first],
            "post_indptr": vecs.indptr.astype(np.int64),
            "post_units": vecs.indices.astype(np.int32),
            "post_weights": vecs.data.astype(np.float32),
            "row_indptr": rows.indptr.astype(np.int64),
            "row_features": rows.indices.astype(np.int32),
            "row_weights": rows.data.astype(np.float32),
            "idf": idf,
        }
        meta = {"version": INDEX_VERSION, "fingerprint": fp, "records": n_records, "answer_points": n,
                "rare_df": max(64, int(RARE_DF * n)), "corpus_dir": str(corpus_dir) if corpus_dir else None,
                "build_seconds": round(time.perf_counter() - t0, 3)}
        log.info("built replay index: %d records, %d answer points in %.1fs", n_records, n, meta["build_seconds"])
        return cls(arrays, meta)
