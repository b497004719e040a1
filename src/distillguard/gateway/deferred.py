"""Observers that must not delay the client: run after the answer is on its way, on the event loop.

``Deferred`` schedules each record for an observer with ``loop.call_soon`` (the response is written
first). An observer that is slow to build (the online detector loads its indexes) is constructed in a
thread; records seen meanwhile are kept (bounded) and replayed once it is ready.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Callable

from ..ledger.record import LedgerRecord

log = logging.getLogger("distillguard.gateway")


class Deferred:
    def __init__(self, build: Callable[[], Callable[[LedgerRecord], None]], backlog: int = 50_000) -> None:
        self._build = build
        self.target: Any = None
        self._pending: collections.deque[LedgerRecord] = collections.deque(maxlen=backlog)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._make())

    async def _make(self) -> None:
        try:
            target = await asyncio.to_thread(self._build)
        except Exception:  # noqa: BLE001 - detection off rather than the gateway down
            log.exception("could not start a deferred observer")
            return
        while self._pending:
            self._safe(target, self._pending.popleft())
        self.target = target

    def __call__(self, record: LedgerRecord) -> None:
        if self.target is None:
            self._pending.append(record)
        elif self._loop is not None:
            self._loop.call_soon(self._safe, self.target, record)

    @staticmethod
    def _safe(target: Callable[[LedgerRecord], None], record: LedgerRecord) -> None:
        try:
            target(record)
        except Exception:  # noqa: BLE001 - an observer never breaks the gateway
            log.exception("observer failed")

    async def ready(self, timeout: float = 60.0) -> bool:
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.target is not None

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
