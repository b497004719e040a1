"""SQLAlchemy engines for SQLite (the embedded default) and Postgres, cached per URL.

SQLite is set up for several threads and several processes at once (the CLI writes while the
server runs): WAL journal, ``synchronous=NORMAL``, a busy timeout instead of instant "database is
locked" errors, and foreign keys on. pysqlite's own transaction handling is kept: a transaction
starts at the first INSERT/UPDATE/DELETE, so read-then-write code never trips over a stale WAL
snapshot (SQLite reports that as SQLITE_BUSY without waiting). SAVEPOINTs are not reliable in
that mode; do not use ``begin_nested()`` on SQLite.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_TIMEOUT_S = 10.0
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20

_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


def json_dumps(obj: Any) -> str:
    """orjson when it can (fast), the stdlib for what it refuses (ints beyond 64 bits, ...)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(obj, default=str)


def is_sqlite(url: str | URL | sa.Engine) -> bool:
    u = url.url if isinstance(url, sa.Engine) else make_url(url)
    return u.get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; ``None`` for an in-memory database."""
    u = make_url(url)
    db = u.database
    if not db or db == ":memory:" or db.startswith("file::memory:") or u.query.get("mode") == "memory":
        return None
    return Path(db)


def make_engine(url: str | URL, **kwargs: Any) -> sa.Engine:
    """A new engine for ``url``; ``kwargs`` override the defaults given to ``create_engine``."""
    u = make_url(url)
    opts: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": orjson.loads}
    if u.get_backend_name() == "sqlite":
        path = sqlite_path(u)
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        if path is None:
            opts["poolclass"] = StaticPool  # one shared in-memory database for every thread
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        opts["connect_args"] = connect_args
        opts.update(kwargs)
        engine = sa.create_engine(u, **opts)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if u.get_backend_name() == "postgresql":
        opts.update(pool_pre_ping=True, pool_recycle=1800)
        if "poolclass" not in kwargs:
            opts.update(pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW, pool_timeout=10)
        if u.get_driver_name() == "psycopg":
            opts["connect_args"] = {"connect_timeout": 5, "application_name": "distillguard"}
    opts.update(kwargs)
    return sa.create_engine(u, **opts)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        # busy_timeout first, so that switching a fresh file to WAL waits for a concurrent opener
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # switching a fresh file to WAL can fail with "locked" at once, without the busy handler, while
        # another process does the same: retry within the busy timeout
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        while True:
            try:
                cur.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def get_engine(url: str | URL) -> sa.Engine:
    """The process-wide engine for ``url`` (created on first use)."""
    key = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    eng = _engines.get(key)
    if eng is not None:
        return eng
    with _lock:
        eng = _engines.get(key)
        if eng is None:
            eng = make_engine(key)
            _engines[key] = eng
        return eng


def dispose_all() -> None:
    """Close every pooled connection of the cached engines and forget them."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for eng in engines:
        eng.dispose()


def _after_fork_in_child() -> None:
    # Connections inherited through fork() belong to the parent: drop them without closing.
    for eng in list(_engines.values()):
        eng.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
