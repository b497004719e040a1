"""One upstream per model route, built on first use and reused (one replay upstream serves all replay routes)."""

from __future__ import annotations

import threading
from typing import Any

from ..config import ModelRoute, Settings
from .base import Upstream
from .openai import OpenAIUpstream
from .replay import ReplayUpstream


class Upstreams:
    def __init__(self, settings: Settings, **replay_options: Any) -> None:
        self.settings = settings
        self._replay_options = replay_options  # e.g. clock/sleep for tests
        self._replay: ReplayUpstream | None = None
        self._by_route: dict[str, Upstream] = {}
        self._lock = threading.Lock()

    @property
    def replay(self) -> ReplayUpstream:
        with self._lock:
            if self._replay is None:
                self._replay = ReplayUpstream(
                    corpus_dir=self.settings.corpus_dir,
                    cache_dir=self.settings.home / "cache",
                    **self._replay_options,
                )
            return self._replay

    def get(self, route: ModelRoute) -> Upstream:
        if route.upstream == "replay":
            return self.replay
        key = route.model_dump_json()  # a changed route definition gets its own client
        with self._lock:
            up = self._by_route.get(key)
            if up is None:
                up = self._by_route[key] = OpenAIUpstream(route)
            return up

    async def warm(self) -> None:
        """Load the replay index now if any route uses it (instead of on the first request)."""
        if any(m.upstream == "replay" for m in self.settings.models):
            await self.replay.warm()

    async def aclose(self) -> None:
        with self._lock:
            ups: list[Upstream] = list(self._by_route.values())
            if self._replay is not None:
                ups.append(self._replay)
            self._by_route.clear()
            self._replay = None
        for up in ups:
            await up.aclose()
