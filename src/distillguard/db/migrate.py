"""Run the packaged Alembic migrations from code; safe at every start and from several processes.

Concurrent upgrades are serialised inside the database, in the same transaction as the DDL: on
SQLite the migration transaction starts with ``BEGIN IMMEDIATE`` (the write lock; a second
process waits in the busy timeout, then finds the schema at head), on Postgres with a
transaction-scoped advisory lock. DDL is transactional on both, so a failed migration leaves
nothing half-done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from .engine import get_engine, is_sqlite, make_engine, sqlite_path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_PG_LOCK_KEY = 0x6447_6D69_6772  # "dGmigr": the advisory lock id of migrations


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code, pointing at the packaged scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The revision the database is at; ``None`` before the first upgrade."""
    with _engine(url) as engine, engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (a no-op when it is there already)."""
    if revision == "head" and current_revision(url) == head_revision():
        return
    _run(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str, revision: str) -> None:
    """Step the database back to ``revision`` (``"base"`` drops everything)."""
    _run(url, lambda cfg: command.downgrade(cfg, revision))


def _run(url: str, fn: Any) -> None:
    with _engine(url, immediate=True) as engine, engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        fn(alembic_config(conn))


@contextmanager
def _engine(url: str, immediate: bool = False) -> Iterator[sa.Engine]:
    """A short-lived engine for migrations (the cached one for in-memory SQLite, which is per engine)."""
    if is_sqlite(url) and sqlite_path(url) is None:
        yield get_engine(url)
        return
    engine = make_engine(url, poolclass=NullPool)
    if immediate and is_sqlite(url):
        event.listen(engine, "connect", _sqlite_manual_transactions)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    try:
        yield engine
    finally:
        engine.dispose()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # pysqlite stops issuing its own BEGIN/COMMIT


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
