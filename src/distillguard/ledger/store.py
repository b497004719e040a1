"""The ledger table behind a small API: idempotent batch inserts, ordered reads, totals, retention.

Works on SQLite and Postgres (any engine from :mod:`distillguard.db.engine`). Rows are fitted to
the column sizes before insert (long strings cut, NUL characters replaced), so that a hostile
User-Agent can never make a batch fail on Postgres.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..db.engine import get_engine, json_dumps
from ..db.schema import ledger as _schema_ledger
from .codec import record_row
from .record import LedgerRecord


def _mirror(table: sa.Table) -> sa.Table:
    """The ledger table with ``None`` in JSON columns stored as SQL NULL (not the JSON ``null``)."""
    cols = [
        sa.Column(
            c.name,
            sa.JSON(none_as_null=True) if isinstance(c.type, sa.JSON) else c.type,
            primary_key=c.primary_key,
            nullable=c.nullable,
        )
        for c in table.columns
    ]
    return sa.Table(table.name, sa.MetaData(), *cols)


T = _mirror(_schema_ledger)
_COLUMNS = tuple(c.name for c in T.columns)
_LENGTHS = {c.name: c.type.length for c in T.columns if isinstance(c.type, sa.String) and c.type.length}
_INTS = ("status", "prompt_tokens", "completion_tokens")
_PURGE_CHUNK = 5000
_JSON_COLS = frozenset(c.name for c in T.columns if isinstance(c.type, sa.JSON))
_SQLITE_INSERT = (
    f"INSERT INTO {T.name} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT (id) DO NOTHING"  # only a known id is skipped; NOT NULL etc. still fail (not OR IGNORE)
)


def fit_row(record: LedgerRecord | Mapping[str, Any]) -> dict[str, Any]:
    """A complete row for the ledger table (unknown keys dropped, sizes fitted)."""
    src = record_row(record) if isinstance(record, LedgerRecord) else record
    row = {name: src.get(name) for name in _COLUMNS}
    for name, value in row.items():
        if isinstance(value, str):
            if "\x00" in value:
                value = value.replace("\x00", "\ufffd")
            limit = _LENGTHS.get(name)
            if limit is not None and len(value) > limit:
                value = value[:limit]
            row[name] = value
    for name in ("prompt_tokens", "completion_tokens"):
        row[name] = int(row[name] or 0)
    if row["status"] is not None:
        row["status"] = int(row["status"])
    if row["ts"] is not None:
        row["ts"] = float(row["ts"])
    return row


class LedgerStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def from_url(cls, url: str) -> LedgerStore:
        return cls(get_engine(url))

    # ---- writes -----------------------------------------------------------------------------
    def write_batch(self, records: Iterable[LedgerRecord | Mapping[str, Any]]) -> int:
        """Insert the records, skipping ids already present; returns how many were new."""
        rows = [fit_row(r) for r in records]
        if not rows:
            return 0
        if self.dialect == "sqlite":
            return self._write_sqlite(rows)
        if self.dialect == "postgresql":
            stmt = postgresql.insert(T).on_conflict_do_nothing(index_elements=[T.c.id]).returning(T.c.id)
            with self.engine.begin() as conn:
                return len(conn.execute(stmt, rows).all())
        return self._write_generic(rows)

    def _write_sqlite(self, rows: list[dict[str, Any]]) -> int:
        """One prepared ``INSERT ... ON CONFLICT (id) DO NOTHING`` through the DB-API's ``executemany``.

        SQLAlchemy's multi-VALUES ``INSERT ... RETURNING`` for a batch held the GIL long enough to
        stall the event loop for ~100 ms per batch (benchmarks/gateway_bench.py); this path does the
        same work in pysqlite's C loop.
        """
        params = [
            tuple(json_dumps(r[c]) if c in _JSON_COLS and r[c] is not None else r[c] for c in _COLUMNS)
            for r in rows
        ]
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            before = raw.driver_connection.total_changes  # type: ignore[union-attr]
            cur.executemany(_SQLITE_INSERT, params)
            raw.commit()
            return int(raw.driver_connection.total_changes - before)  # type: ignore[union-attr]
        except sqlite3.Error as e:
            raw.rollback()
            # the same exception classes as the SQLAlchemy path (IntegrityError, OperationalError, ...)
            raise sa.exc.DBAPIError.instance(_SQLITE_INSERT, None, e, sqlite3.Error) from e
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    def _write_generic(self, rows: list[dict[str, Any]]) -> int:
        with self.engine.begin() as conn:
            ids = list({r["id"] for r in rows})
            present = set(conn.scalars(sa.select(T.c.id).where(T.c.id.in_(ids))))
            fresh: dict[str, dict[str, Any]] = {}
            for r in rows:
                if r["id"] not in present:
                    fresh.setdefault(r["id"], r)
            if fresh:
                conn.execute(sa.insert(T), list(fresh.values()))
            return len(fresh)

    def purge_older_than(self, ts: float) -> int:
        """Delete records that started before ``ts``; returns how many (in chunks: short locks)."""
        return self._chunked(
            lambda ids: sa.delete(T).where(T.c.id.in_(ids)),
            sa.select(T.c.id).where(T.c.ts < ts),
        )

    def strip_bodies_older_than(self, ts: float) -> int:
        """Drop request bodies and response texts of records older than ``ts``."""
        has_body = sa.or_(T.c.request.is_not(None), T.c.response_text.is_not(None))
        return self._chunked(
            lambda ids: sa.update(T).where(T.c.id.in_(ids)).values(request=None, response_text=None),
            sa.select(T.c.id).where(T.c.ts < ts, has_body),
        )

    def _chunked(self, make: Any, select_ids: sa.Select[Any]) -> int:
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = list(conn.scalars(select_ids.limit(_PURGE_CHUNK)))
                if not ids:
                    return total
                conn.execute(make(ids))
            total += len(ids)

    # ---- reads ------------------------------------------------------------------------------
    def get(self, id: str) -> LedgerRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(T).where(T.c.id == id)).first()
        return LedgerRecord.from_row(row) if row is not None else None

    def get_many(self, ids: Iterable[str], chunk: int = 500) -> dict[str, LedgerRecord]:
        """The records of ``ids`` that exist, by id, in one query per ``chunk`` ids."""
        ids = list(dict.fromkeys(ids))
        out: dict[str, LedgerRecord] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), chunk):
                for row in conn.execute(sa.select(T).where(T.c.id.in_(ids[i : i + chunk]))):
                    rec = LedgerRecord.from_row(row)
                    out[rec.id] = rec
        return out

    def iter_records(
        self,
        since: float | None = None,
        until: float | None = None,
        org: str | None = None,
        key: str | None = None,
        batch: int = 1000,
    ) -> Iterator[LedgerRecord]:
        """Records with ``since <= ts < until``, ordered by (ts, id), read page by page.

        Keyset pagination: constant memory, and no connection is held while the caller works.
        """
        where = _filters(since, until, org, key)
        last: tuple[float, str] | None = None
        while True:
            q = sa.select(T).where(*where)
            if last is not None:
                q = q.where(T.c.ts >= last[0], sa.or_(T.c.ts > last[0], T.c.id > last[1]))
            q = q.order_by(T.c.ts, T.c.id).limit(batch)
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            for row in rows:
                yield LedgerRecord.from_row(row)
            if len(rows) < batch:
                return
            last = (rows[-1].ts, rows[-1].id)

    def count(
        self,
        since: float | None = None,
        until: float | None = None,
        org: str | None = None,
        key: str | None = None,
    ) -> int:
        q = sa.select(sa.func.count()).select_from(T).where(*_filters(since, until, org, key))
        with self.engine.connect() as conn:
            return int(conn.scalar(q) or 0)

    def token_totals(
        self,
        key: str | None = None,
        org: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> tuple[int, int]:
        """(prompt tokens, completion tokens) summed over the matching records."""
        q = sa.select(
            sa.func.coalesce(sa.func.sum(T.c.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(T.c.completion_tokens), 0),
        ).where(*_filters(since, until, org, key))
        with self.engine.connect() as conn:
            prompt, completion = conn.execute(q).one()
        return int(prompt), int(completion)


def _filters(
    since: float | None, until: float | None, org: str | None, key: str | None
) -> list[sa.ColumnElement[bool]]:
    out: list[sa.ColumnElement[bool]] = []
    if since is not None:
        out.append(T.c.ts >= since)
    if until is not None:
        out.append(T.c.ts < until)
    if org is not None:
        out.append(T.c.org == org)
    if key is not None:
        out.append(T.c.key == key)
    return out
