"""The output index: a MinHash LSH (datasketch) over every answer the gateway served.

Built from the ledger and kept up to date incrementally: ``update_from_ledger`` reads records from a
little before the high-water mark (answers are written when they finish, stamped when they started)
and skips ids already indexed. Two layouts:

- embedded (default): LSH tables pickled and entries as ``.npy`` files under ``DG_HOME/forensics``;
- Redis: LSH tables in Redis (datasketch ``storage_config``) and entries in Redis hashes, all under
  one key prefix, shared by every process that opens it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHashLSH

from ..ledger.record import LedgerRecord
from ..upstreams.corpus import content_text
from .entries import ArrayEntries, Entry, EntryTable, RedisEntries, batched
from .sketch import (
    NUM_PERM,
    PROMPT_PERM,
    SHINGLE,
    Sketch,
    Sketcher,
    containment,
    jaccard,
)
from .weights import ShingleDF, shingle_hashes

LSH_THRESHOLD = 0.3  # candidate generation (Jaccard); verification decides
LSH_WEIGHTS = (0.3, 0.7)  # favour recall: a false candidate costs only one comparison
OVERLAP_S = 900.0  # re-read this much before the high-water mark (long requests are written late)
_FILES = ("lsh.pkl", "entries.json", "sig.npy", "psig.npy", "num.npy", "df.npz")


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


class OutputIndex:
    """MinHash LSH over stored outputs + the entry table; query with sketches of suspect texts."""

    def __init__(self, lsh: MinHashLSH, entries: EntryTable, sketcher: Sketcher,
                 directory: Path | None = None, df: ShingleDF | None = None) -> None:
        self.lsh, self.entries, self.sketcher, self.directory = lsh, entries, sketcher, directory
        # shingle document frequencies (None: not kept, e.g. the Redis layout, or an index built before them)
        self.df = df

    # ---- construction -----------------------------------------------------------------------
    @staticmethod
    def _new_lsh(num_perm: int, storage_config: dict[str, Any] | None = None) -> MinHashLSH:
        return MinHashLSH(threshold=LSH_THRESHOLD, num_perm=num_perm, weights=LSH_WEIGHTS,
                          storage_config=storage_config)

    @classmethod
    def memory(cls, num_perm: int = NUM_PERM, directory: Path | None = None) -> OutputIndex:
        return cls(cls._new_lsh(num_perm), ArrayEntries(num_perm, PROMPT_PERM, directory),
                   Sketcher(num_perm, SHINGLE), directory, ShingleDF())

    @classmethod
    def open_dir(cls, directory: str | Path, num_perm: int = NUM_PERM, mmap: bool = False) -> OutputIndex:
        """The embedded index persisted in ``directory`` (created empty when absent)."""
        d = Path(directory)
        if not (d / "lsh.pkl").is_file():
            return cls.memory(num_perm, d)
        with open(d / "lsh.pkl", "rb") as f:
            lsh = pickle.load(f)
        entries = ArrayEntries.load(d, mmap=mmap)
        return cls(lsh, entries, Sketcher(entries.num_perm, SHINGLE), d, ShingleDF.load(d))

    @classmethod
    def redis(cls, url: str, prefix: str = "dg:forensics:", num_perm: int = NUM_PERM) -> OutputIndex:
        """An index living in Redis under ``prefix`` (LSH buckets and entries)."""
        import redis as redis_lib

        client = redis_lib.Redis.from_url(url)
        kw = client.connection_pool.connection_kwargs
        conn = {k: kw[k] for k in ("host", "port", "db", "password", "username", "unix_socket_path") if kw.get(k)}
        if "unix_socket_path" in conn:
            conn = {k: v for k, v in conn.items() if k not in ("host", "port")}
        config = {"type": "redis", "basename": (prefix + "lsh").encode(), "redis": conn,
                  "redis_buffer": {"transaction": False}}
        return cls(cls._new_lsh(num_perm, config), RedisEntries(client, prefix, num_perm, PROMPT_PERM),
                   Sketcher(num_perm, SHINGLE))

    # ---- writes -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def add_outputs(self, outputs: Iterable[Output], batch: int = 2000) -> int:
        """Index the outputs (ids already indexed are skipped); returns how many were added."""
        added = 0
        for chunk in batched(outputs, batch):
            known = self.entries.known([o.id for o in chunk])
            fresh = list({o.id: o for o, k in zip(chunk, known) if not k}.values())
            if not fresh:
                continue
            rows = self.entries.next_rows(len(fresh))  # type: ignore[attr-defined]
            entries: list[Entry] = []
            docs: list[np.ndarray] = []
            with self.lsh.insertion_session(buffer_size=len(fresh) * self.lsh.b + 16) as session:
                for row, o in zip(rows, fresh):
                    sh = self.sketcher.shingle_set(o.answer)
                    a = self.sketcher.sketch_set(sh)
                    if self.df is not None:
                        docs.append(shingle_hashes(self.sketcher.proto, list(sh)))
                    p = self.sketcher.sketch(o.prompt)
                    session.insert(row, a.minhash, check_duplication=False)
                    entries.append(Entry(row, o.id, o.org, o.ts, a.size,
                                         np.asarray(a.values, np.uint32),
                                         np.asarray(p.values[:PROMPT_PERM], np.uint32), p.size))
            self.entries.add(entries)
            if self.df is not None:
                self.df.add(docs)
            added += len(entries)
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

        added = self.add_outputs(outputs())
        if top[0] is not None:
            self.entries.set_state({**self.entries.get_state(), "ledger_ts": top[0]})
        self.save()
        return added

    def save(self) -> None:
        """Persist the embedded index (a no-op for Redis, where every write is already stored)."""
        if isinstance(self.entries, ArrayEntries) and self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / "lsh.pkl.tmp"
            with open(tmp, "wb") as f:
                pickle.dump(self.lsh, f, protocol=pickle.HIGHEST_PROTOCOL)
            self.entries.save()
            if self.df is not None:
                self.df.save(self.directory)
            os.replace(tmp, self.directory / "lsh.pkl")

    # ---- reads ------------------------------------------------------------------------------
    def candidates(self, sketches: Sequence[Sketch]) -> list[list[Candidate]]:
        """For each sketch, the stored outputs sharing an LSH band with it, scored (best first).

        Bands are looked up for the whole batch at once (one pipeline per band on Redis).
        """
        rows_per: list[set[int]] = [set() for _ in sketches]
        live = [i for i, s in enumerate(sketches) if s.size > 0]
        if not live or len(self.entries) == 0:
            return [[] for _ in sketches]
        for (start, end), table in zip(self.lsh.hashranges, self.lsh.hashtables):
            keys = [self.lsh._H(sketches[i].values[start:end]) for i in live]
            for i, found in zip(live, table.getmany(*keys)):
                if found:
                    rows_per[i].update(pickle.loads(k) if self.lsh.prepickle else k for k in found)
        all_rows = sorted(set().union(*rows_per))
        by_row = {e.row: e for e in self.entries.get_many(all_rows)}
        out: list[list[Candidate]] = []
        for s, rows in zip(sketches, rows_per):
            scored = []
            for r in rows:
                e = by_row.get(r)
                if e is None:
                    continue
                j = jaccard(s.values, e.sig)
                scored.append(Candidate(e, j, containment(j, s.size, e.size)))
            scored.sort(key=lambda c: (c.score, c.jaccard), reverse=True)
            out.append(scored)
        return out


def default_index_dir(home: Path) -> Path:
    return Path(home) / "forensics"


def clear_dir(directory: Path) -> None:
    """Delete a persisted embedded index (rebuild from scratch)."""
    for name in _FILES:
        (Path(directory) / name).unlink(missing_ok=True)
