"""Backend choice, and the reset formatting shared by the status headers."""

from __future__ import annotations

import pytest

from distillguard.limits.base import format_reset
from distillguard.limits.factory import make_limiter
from distillguard.limits.memory import MemoryLimiter
from distillguard.limits.redis import RedisLimiter


async def test_memory_without_redis_url() -> None:
    assert isinstance(make_limiter(None), MemoryLimiter)
    assert isinstance(make_limiter(""), MemoryLimiter)


async def test_redis_with_url() -> None:
    lim = make_limiter("redis://127.0.0.1:6379/0")  # connects lazily
    assert isinstance(lim, RedisLimiter)
    await lim.aclose()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-1, "0s"),
        (0, "0s"),
        (0.0001, "1ms"),
        (0.02, "20ms"),
        (0.5, "500ms"),
        (1, "1s"),
        (1.2, "2s"),
        (59.5, "1m0s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
        (86_400, "24h0m0s"),
    ],
)
def test_format_reset(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text
