"""The output index: a MinHash LSH (datasketch) over every answer the gateway served.

Built from the ledger and kept up to date incrementally: ``update_from_ledger`` reads records from a
little before the high-water mark (answers are written when they finish, stamped when they started)
and skips ids already indexed. Two layouts:

- embedded (default): band tables as sorted arrays and entries as fixed-width column files under
  ``DG_HOME/forensics``, read memory-mapped (:mod:`.bands`, :mod:`.entries`), so opening a
  million-output index costs no parsing and a trace touches only what it searches;
- Redis: the same band tables, entries and shingle document frequencies as packed binary records in
  Redis strings, all under one key prefix, shared by every process that opens it; a batch of lookups
  is one Lua call (:mod:`.redisio`).

Queries are batched: a batch of sketches becomes flat arrays of (query, stored row) pairs, scored in
numpy (Jaccard and containment from the stored sketches), and only the best few per query become
:class:`Candidate` objects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..ledger.record import LedgerRecord
from ..upstreams.corpus import content_text
from .bands import ArrayBands, Bands, lsh_params
from .entries import FORMAT, ArrayEntries, Entry, EntryTable, RedisEntries, batched
from .sketch import NUM_PERM, PROMPT_PERM, SHINGLE, Sketch, SketchBatch, Sketcher
from .weights import RedisShingleDF, ShingleDF

LSH_THRESHOLD = 0.3  # candidate generation (Jaccard); verification decides
LSH_WEIGHTS = (0.3, 0.7)  # favour recall: a false candidate costs only one comparison
HEAD_MIN_TOKENS = 60  # a stored answer this long is also banded by the sketch of its first half (``add_outputs``)
OVERLAP_S = 900.0  # re-read this much before the high-water mark (long requests are written late)
PAIR_CHUNK = 65536  # (query, row) pairs scored per numpy block
SAVE_EVERY = 200_000  # outputs indexed from the ledger between saves (bounds the in-memory delta)
_FILES = ("entries.json", "sig.bin", "psig.bin", "num.bin", "orgc.bin", "idh.bin", "ids.bin", "bkeys.npy",
          "brows.npy", "df.npz")
_OLD_FILES = ("lsh.pkl", "sig.npy", "psig.npy", "num.npy")  # format 1 (pickled datasketch LSH)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Output:
    """One stored API output to index."""

    id: str
    org: str | None
    ts: float
    prompt: str
    answer: str


@dataclass(frozen=True, slots=True)
class Candidate:
    entry: Entry
    jaccard: float
    containment: float  # share of the query's shingles found in the stored output

    @property
    def score(self) -> float:
        return max(self.jaccard, self.containment)


def request_prompt(request: dict[str, Any] | None) -> str:
    """The user text of a request: the user turns after the last assistant turn, or ``prompt``."""
    if not request:
        return ""
    msgs = request.get("messages")
    if isinstance(msgs, list):
        tail: list[str] = []
        for m in msgs:
            if not isinstance(m, dict):
                continue
            if m.get("role") == "assistant":
                tail = []
            elif m.get("role") == "user":
                tail.append(content_text(m.get("content")))
        return "\n".join(tail)
    p = request.get("prompt")
    if isinstance(p, list):
        return "\n".join(str(x) for x in p)
    return str(p or "")


def output_of(rec: LedgerRecord) -> Output | None:
    """The indexable output of a ledger record (a successful answer with text), else None."""
    if rec.status != 200 or not rec.response_text or "embeddings" in (rec.endpoint or ""):
        return None
    return Output(rec.id, rec.org, float(rec.ts), request_prompt(rec.request), rec.response_text)


@dataclass(frozen=True, slots=True)
class Scored:
    """Scored (query, stored row) pairs as flat arrays, best first within each query."""

    query: np.ndarray
    row: np.ndarray
    jaccard: np.ndarray
    containment: np.ndarray

    @property
    def score(self) -> np.ndarray:
        return np.maximum(self.jaccard, self.containment)

    def take(self, sel: np.ndarray) -> Scored:
        return Scored(self.query[sel], self.row[sel], self.jaccard[sel], self.containment[sel])


class OutputIndex:
    """MinHash LSH over stored outputs + the entry table; query with sketches of suspect texts."""

    def __init__(self, bands: Bands, entries: EntryTable, sketcher: Sketcher,
                 directory: Path | None = None, df: ShingleDF | None = None) -> None:
        self.bands, self.entries, self.sketcher, self.directory = bands, entries, sketcher, directory
        # shingle document frequencies (None: not kept)
        self.df = df

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def memory(cls, num_perm: int = NUM_PERM, directory: Path | None = None) -> OutputIndex:
        b, r = lsh_params(LSH_THRESHOLD, num_perm, LSH_WEIGHTS)
        return cls(ArrayBands(b, r, directory), ArrayEntries(num_perm, PROMPT_PERM, directory),
                   Sketcher(num_perm, SHINGLE), directory, ShingleDF())

    @classmethod
    def open_dir(cls, directory: str | Path, num_perm: int = NUM_PERM) -> OutputIndex:
        """The embedded index persisted in ``directory`` (created empty when absent).

        An index of the previous on-disk format (its sketches used another shingle hash) is deleted
        and starts empty: the next ``update_from_ledger`` rebuilds it from the whole ledger.
        """
        d = Path(directory)
        meta = d / "entries.json"
        fmt = json.loads(meta.read_text()).get("format") if meta.is_file() else FORMAT
        if fmt != FORMAT or any((d / f).is_file() for f in _OLD_FILES):
            log.warning("forensics index in %s has an old format; rebuilding it from the ledger", d)
            clear_dir(d)
        if not (d / "entries.json").is_file():
            return cls.memory(num_perm, d)
        entries = ArrayEntries.load(d)
        b, r = lsh_params(LSH_THRESHOLD, entries.num_perm, LSH_WEIGHTS)
        return cls(ArrayBands.load(d, b, r), entries, Sketcher(entries.num_perm, SHINGLE), d, ShingleDF.load(d))

    @classmethod
    def redis(cls, url: str, prefix: str = "dg:forensics:", num_perm: int = NUM_PERM) -> OutputIndex:
        """An index living in Redis under ``prefix`` (band tables, entries, shingle counts), shared by
        every process that opens the same prefix; several prefixes coexist in one Redis. Keys of an older
        Redis layout under the prefix are deleted (the next ``update_from_ledger`` rebuilds the index)."""
        import redis as redis_lib

        from .bands import RedisBands
        from .redisio import RedisIO

        io = RedisIO(redis_lib.Redis.from_url(url), prefix)
        entries = RedisEntries.open(io, num_perm, PROMPT_PERM)
        b, r = lsh_params(LSH_THRESHOLD, num_perm, LSH_WEIGHTS)
        return cls(RedisBands(io, b, r), entries, Sketcher(num_perm, SHINGLE),
                   df=RedisShingleDF(io))

    # ---- writes -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def add_outputs(self, outputs: Iterable[Output], batch: int = 2000, save_every: int | None = None) -> int:
        """Index the outputs (ids already indexed are skipped); returns how many were added.

        With ``save_every`` the embedded index is saved each time that many more were added, which
        bounds the rows held in memory while indexing a large ledger."""
        added = unsaved = 0
        for chunk in batched(outputs, batch):
            known = self.entries.known([o.id for o in chunk])
            fresh = list({o.id: o for o, k in zip(chunk, known) if not k}.values())
            if not fresh:
                continue
            rows = np.asarray(self.entries.next_rows(len(fresh)), np.int64)  # type: ignore[attr-defined]
            a = self.sketcher.batch([o.answer for o in fresh])
            p = self.sketcher.batch([o.prompt for o in fresh])
            self.bands.add(rows, a.values)
            # A truncated copy is a subset of its source: at 40% of a long answer its Jaccard with the whole is ~0.4,
            # which the bands (tuned for 0.3 and above, with a weight on recall) still miss now and then; with the
            # first half it is ~0.8. The head's band keys point at the same row, scored against the whole answer.
            long = [i for i, t in enumerate(a.toks) if len(t) >= HEAD_MIN_TOKENS]
            if long:
                h = self.sketcher.batch(token_lists=[a.toks[i][: len(a.toks[i]) // 2] for i in long])
                self.bands.add(rows[long], h.values)
            self.entries.add_columns([o.id for o in fresh], [o.org for o in fresh],  # type: ignore[attr-defined]
                                     np.array([o.ts for o in fresh], np.float64), a.sizes, a.values,
                                     p.values[:, :PROMPT_PERM], p.sizes)
            if self.df is not None:
                self.df.add_grouped(a.hashes, a.starts)
            added += len(fresh)
            unsaved += len(fresh)
            if save_every and unsaved >= save_every:
                self.save()
                unsaved = 0
        return added

    def update_from_ledger(self, store: Any, overlap_s: float = OVERLAP_S,
                           progress: Callable[[int], None] | None = None) -> int:
        """Index ledger records newer than the high-water mark (minus ``overlap_s``); returns the count.

        ``store`` is a :class:`~distillguard.ledger.store.LedgerStore` (anything with ``iter_records``).
        """
        state = self.entries.get_state()
        hw = state.get("ledger_ts")
        since = None if hw is None else float(hw) - overlap_s
        top = [hw]

        def outputs() -> Iterator[Output]:
            seen = 0
            for rec in store.iter_records(since=since):
                top[0] = rec.ts if top[0] is None else max(top[0], rec.ts)
                seen += 1
                if progress and seen % 1000 == 0:
                    progress(seen)
                o = output_of(rec)
                if o is not None:
                    yield o

        added = self.add_outputs(outputs(), save_every=SAVE_EVERY)
        if top[0] is not None:
            self.entries.set_state({**self.entries.get_state(), "ledger_ts": top[0]})
        self.save()
        return added

    def save(self) -> None:
        """Persist the embedded index (a no-op for Redis, where every write is already stored)."""
        if isinstance(self.entries, ArrayEntries) and self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            assert isinstance(self.bands, ArrayBands)
            self.bands.save(self.directory)  # rows first: entries.json (the commit point) last
            if self.df is not None:
                self.df.save(self.directory)
            self.entries.save()

    # ---- reads ------------------------------------------------------------------------------
    def score(self, values: np.ndarray, sizes: np.ndarray, top: int | None = None) -> Scored:
        """Every stored output sharing an LSH band with each query, scored; the best ``top`` per query.

        ``values`` (queries x num_perm) and ``sizes`` (shingle counts) are a batch of query sketches;
        empty queries (size 0) get no candidates. Pairs come out grouped by query, best first
        (score = max(Jaccard, containment of the query in the stored output), then Jaccard).
        """
        values = np.asarray(values, np.uint32)
        sizes = np.asarray(sizes, np.int64)
        live = np.flatnonzero(sizes > 0)
        empty = Scored(*(np.zeros(0, t) for t in (np.int64, np.int64, np.float64, np.float64)))
        if len(live) == 0 or len(self.entries) == 0:
            return empty
        qi, rows = self.bands.query(values[live])
        if len(qi) == 0:
            return empty
        qi = live[qi]
        j = np.empty(len(qi), np.float64)
        ssize = np.empty(len(qi), np.int64)
        n = values.shape[1]
        for lo in range(0, len(qi), PAIR_CHUNK):
            sl = slice(lo, lo + PAIR_CHUNK)
            sig, ssize[sl] = self.entries.sigs(rows[sl])
            j[sl] = np.count_nonzero(sig[:, :n] == values[qi[sl]].astype(sig.dtype), axis=1) / n
        qs = sizes[qi].astype(np.float64)
        cont = np.minimum(1.0, np.where(j > 0, j * (qs + ssize) / (1.0 + j), 0.0) / qs)
        order = np.lexsort((-j, -np.maximum(j, cont), qi))
        out = Scored(qi[order], rows[order], j[order], cont[order])
        if top is not None:
            first = np.concatenate(([0], np.flatnonzero(np.diff(out.query)) + 1))
            rank = np.arange(len(out.query)) - np.repeat(first, np.diff(np.append(first, len(out.query))))
            out = out.take(rank < top)
        return out

    def candidates(self, sketches: Sequence[Sketch] | SketchBatch, top: int | None = None) -> list[list[Candidate]]:
        """For each sketch, the stored outputs sharing an LSH band with it, scored (best first)."""
        if isinstance(sketches, SketchBatch):
            values, sizes, n = sketches.values, sketches.sizes, len(sketches)
        else:
            n = len(sketches)
            if n == 0:
                return []
            values = np.stack([np.asarray(s.values, np.uint32) for s in sketches])
            sizes = np.array([s.size for s in sketches], np.int64)
        sc = self.score(values, sizes, top)
        by_row = {e.row: e for e in self.entries.get_many(np.unique(sc.row).tolist())}
        out: list[list[Candidate]] = [[] for _ in range(n)]
        for q, r, j, c in zip(sc.query.tolist(), sc.row.tolist(), sc.jaccard.tolist(), sc.containment.tolist()):
            e = by_row.get(r)
            if e is not None:
                out[q].append(Candidate(e, j, c))
        return out


def default_index_dir(home: Path) -> Path:
    return Path(home) / "forensics"


def clear_dir(directory: Path) -> None:
    """Delete a persisted embedded index (rebuild from scratch)."""
    for name in _FILES + _OLD_FILES:
        (Path(directory) / name).unlink(missing_ok=True)
