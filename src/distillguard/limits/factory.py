"""Choose the limiter backend from configuration."""

from __future__ import annotations

from .base import Limiter


def make_limiter(redis_url: str | None, prefix: str = "dg:lim:") -> Limiter:
    """A Redis-backed limiter shared by all processes when ``redis_url`` is set, else an in-process one."""
    if redis_url:
        from .redis import RedisLimiter

        return RedisLimiter(redis_url, prefix=prefix)
    from .memory import MemoryLimiter

    return MemoryLimiter()
