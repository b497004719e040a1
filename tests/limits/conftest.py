"""Fixtures for the limiter tests: a fake clock and limiters of both backends on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from distillguard.limits.base import Limiter
from distillguard.limits.memory import MemoryLimiter


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


T0 = utc(2024, 5, 31, 12, 0, 0)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Backend:
    name: str
    clock: FakeClock
    factory: Callable[[], Limiter]
    made: list[Limiter] = field(default_factory=list)

    def make(self) -> Limiter:
        """A new limiter; for Redis it shares the test's prefix, as another process would."""
        lim = self.factory()
        self.made.append(lim)
        return lim


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    clock = FakeClock()
    if request.param == "memory":
        b = Backend("memory", clock, lambda: MemoryLimiter(clock=clock))
    else:
        from distillguard.limits.redis import RedisLimiter

        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        b = Backend("redis", clock, lambda: RedisLimiter(url, prefix=prefix, clock=clock))
    yield b
    for lim in b.made:
        await lim.aclose()


@pytest.fixture
def lim(backend: Backend) -> Limiter:
    return backend.make()


@pytest.fixture
def clock(backend: Backend) -> FakeClock:
    return backend.clock
