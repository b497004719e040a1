"""Knowing when cached account state is stale.

Every change that can affect authentication (status, keys, limits) bumps ``state_version`` in
the database in the same transaction. A ``StateWatcher`` tells the access service the latest
version cheaply, so its cache is dropped before the next request is answered:

* ``DbVersionWatcher`` reads the row on every call. On SQLite it uses a raw ``sqlite3``
  connection (a few µs), which also sees commits made by the CLI in another process.
* ``RedisVersionWatcher`` (multi-replica deployments) listens on a pub/sub channel to which
  every change is published after commit, and re-reads the database row on each message and on
  reconnect. Replicas then see a suspension at the next request without a query per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from typing import Protocol

import sqlalchemy as sa

STATE_CHANNEL = "dg:state"


class StateWatcher(Protocol):
    def current(self) -> int: ...

    def notify(self, version: int) -> None: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class DbVersionWatcher:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._sqlite: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sqlite = sqlite3.connect(url.database, check_same_thread=False, isolation_level=None)
            self._sqlite.execute("PRAGMA busy_timeout=10000")

    def current(self) -> int:
        if self._sqlite is not None:
            with self._lock:
                row = self._sqlite.execute("SELECT version FROM state_version WHERE id=1").fetchone()
            return int(row[0]) if row else 0
        with self.engine.connect() as c:
            return int(c.execute(sa.text("SELECT version FROM state_version WHERE id=1")).scalar() or 0)

    def notify(self, version: int) -> None:  # the database is the source of truth
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


class RedisVersionWatcher:
    def __init__(self, engine: sa.Engine, redis_url: str) -> None:
        self._db = DbVersionWatcher(engine)
        self._url = redis_url
        self._version = -1  # unknown until the first read: forces a DB read
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def current(self) -> int:
        if self._version < 0 or self._task is None or self._task.done():
            self._version = self._db.current()  # listener not running: be exact rather than fast
        return self._version

    def notify(self, version: int) -> None:
        """Called in-process after a change; publishing is done by ``publish_change``."""
        self._version = max(self._version, version)

    async def start(self) -> None:
        self._version = await asyncio.to_thread(self._db.current)
        self._task = asyncio.create_task(self._listen(), name="dg-state-listener")

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while not self._stop.is_set():
            client = aioredis.Redis.from_url(self._url)
            try:
                async with client.pubsub() as ps:
                    await ps.subscribe(STATE_CHANNEL)
                    # a change may have happened while we were not subscribed
                    self._version = await asyncio.to_thread(self._db.current)
                    while not self._stop.is_set():
                        msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg is not None:
                            with contextlib.suppress(ValueError, TypeError):
                                self._version = max(self._version, int(msg["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect; current() falls back to the DB meanwhile
                self._version = -1
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._db.aclose()


def publish_change(redis_url: str | None, version: int) -> None:
    """Tell every replica that account state changed (no-op without Redis)."""
    if not redis_url:
        return
    import redis

    with contextlib.suppress(Exception):
        r = redis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            r.publish(STATE_CHANNEL, str(version))
        finally:
            r.close()
