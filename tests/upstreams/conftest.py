"""Fixtures for the upstream tests: one replay index per session, a fake clock and sleep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distillguard.config import ModelRoute
from distillguard.upstreams.base import Endpoint, UpstreamCall
from distillguard.upstreams.corpus import load_corpus
from distillguard.upstreams.replay import ReplayUpstream

NOW = 1_700_000_000.0


class FakeSleep:
    """Records requested delays instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="session")
def replay_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replay-cache")


@pytest.fixture(scope="session")
def compact_records() -> list:
    return load_corpus(None)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def replay(replay_cache: Path, fake_sleep: FakeSleep) -> ReplayUpstream:
    up = ReplayUpstream(cache_dir=replay_cache, clock=lambda: NOW, sleep=fake_sleep)
    up.index  # noqa: B018 - load (or build once per session) outside the event loop
    return up


def make_call(endpoint: Endpoint, body: dict[str, Any], route: ModelRoute | None = None,
              request_id: str = "req_test") -> UpstreamCall:
    if route is None:
        name = str(body.get("model", "gpt-4o-mini"))
        route = ModelRoute(name=name, kind="embedding" if endpoint == "embeddings" else "chat")
    return UpstreamCall(route=route, endpoint=endpoint, body=body, request_id=request_id)


def first_answer(record) -> tuple[list[dict], str]:
    """(context, answer) of a record's first assistant turn."""
    for i, m in enumerate(record.messages):
        if m["role"] == "assistant":
            return [dict(x) for x in record.messages[:i]], m["content"]
    raise AssertionError("record without an answer")
