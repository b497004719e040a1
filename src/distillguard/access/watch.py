"""Knowing when cached account state is stale.

Every change that can affect authentication (status, keys, limits) bumps ``state_version`` in
the database in the same transaction. A ``StateWatcher`` tells the access service the latest
version cheaply, so its cache is dropped before the next request is answered:

* ``DbVersionWatcher``: on SQLite, one ``stat`` of a signal file that every change replaces
  after commit (which also sees changes made by the CLI in another process); elsewhere it reads
  the row on every call.
* ``RedisVersionWatcher`` (multi-replica deployments) listens on a pub/sub channel to which
  every change is published after commit, and re-reads the database row on each message and on
  reconnect. Replicas then see a suspension at the next request without a query per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import Protocol

import sqlalchemy as sa

STATE_CHANNEL = "dg:state"


class StateWatcher(Protocol):
    def current(self) -> int: ...

    def notify(self, version: int) -> None: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def signal_path(engine: sa.Engine) -> str | None:
    """For a file-backed SQLite database, the small file every account change replaces after commit."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return url.database + "-state"
    return None


def touch_signal(engine: sa.Engine, version: int) -> None:
    """Replace the signal file (new inode, new mtime): watchers notice with one ``stat``."""
    path = signal_path(engine)
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        f.write(str(version))
    os.replace(tmp, path)


class DbVersionWatcher:
    """Exact change detection without Redis.

    SQLite: every change replaces ``<db>-state`` after its commit, so the hot path is one ``stat``
    and never a database read (a SQLite read on the event loop can wait out the busy handler while
    the ledger writer checkpoints the WAL: ~100 ms stalls). The version row is read only when the
    file changed. Other databases: the version row is read on every call (one indexed query).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._signal = signal_path(engine)
        self._token: tuple[int, int, int] | None = None
        self._version = -1
        self._lock = threading.Lock()
        if self._signal is not None and not os.path.exists(self._signal):
            touch_signal(engine, self._read_db())

    def _read_db(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.text("SELECT version FROM state_version WHERE id=1")).scalar() or 0)

    def current(self) -> int:
        if self._signal is None:
            return self._read_db()
        try:
            st = os.stat(self._signal)
            token: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            token = None
        if token is None or token != self._token:
            with self._lock:
                self._version = self._read_db()
                self._token = token
        return self._version

    def notify(self, version: int) -> None:  # the database (and its signal file) is the source of truth
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


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
