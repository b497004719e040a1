"""Redis-only behaviour: one limit across processes, key layout and expiry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import redis
import redis.asyncio as aioredis

from distillguard.errors import RateLimited
from distillguard.limits.base import LimitSpec, Subject
from distillguard.limits.redis import RedisLimiter

from .conftest import FakeClock, utc

pytestmark = pytest.mark.redis

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import redis.asyncio as aioredis
    from distillguard.errors import RateLimited
    from distillguard.limits.base import LimitSpec, Subject
    from distillguard.limits.redis import RedisLimiter

    url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main() -> None:
        lim = RedisLimiter(url, prefix=prefix, clock=lambda: 1717243200.0)  # frozen: no refill
        r = aioredis.Redis.from_url(url)
        await r.incr(prefix + "ready")  # start together, so the two processes interleave
        deadline = time.monotonic() + 20
        while int(await r.get(prefix + "ready")) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        s = [Subject("key:key_mp", LimitSpec(rpm=100)), Subject("org:org_mp", LimitSpec(rpm=1000))]
        ok = 0

        async def one() -> None:
            nonlocal ok
            try:
                await lim.reserve(s, 1)
                ok += 1
            except RateLimited:
                pass

        for _ in range(n // 20):
            await asyncio.gather(*(one() for _ in range(20)))
        print(ok)
        await r.aclose()
        await lim.aclose()

    asyncio.run(main())
    """
)


def test_two_processes_enforce_one_limit(redis_url: str, redis_prefix: str) -> None:
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, redis_prefix, "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        counts.append(int(out.strip()))
    assert sum(counts) == 100, counts


async def test_keys_live_under_the_prefix_and_expire(redis_url: str, redis_prefix: str) -> None:
    clock = FakeClock(utc(2024, 5, 31, 18, 0, 0))
    lim = RedisLimiter(redis_url, prefix=redis_prefix, clock=clock)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        s = [Subject("key:key_a", LimitSpec(rpm=60, tpm=6000, daily_tokens=10**6)), Subject("org:org_x", LimitSpec())]
        await lim.reserve(s, 600)
        keys = sorted(r.scan_iter(match=redis_prefix + "*"))
        assert keys == sorted(
            redis_prefix + k
            for k in (
                "b:key:key_a",
                "d:20240531:key:key_a",
                "m:202405:key:key_a",
                "d:20240531:org:org_x",
                "m:202405:org:org_x",
            )
        )  # an unlimited subject has no bucket, only its usage counts
        # the bucket lives until it would be full again: 1 request at 1/s, 600 tokens at 100/s -> 6 s (+ margin)
        assert 6_000 < r.pttl(redis_prefix + "b:key:key_a") <= 8_000
        # quota counters: until the end of the window, plus a day
        day_ttl, month_ttl = r.ttl(redis_prefix + "d:20240531:key:key_a"), r.ttl(redis_prefix + "m:202405:key:key_a")
        assert 6 * 3600 + 86_400 - 5 <= day_ttl <= 6 * 3600 + 86_400
        assert month_ttl == pytest.approx(day_ttl, abs=5)
        assert r.get(redis_prefix + "d:20240531:key:key_a") == "600"
    finally:
        r.close()
        await lim.aclose()


async def test_an_expired_bucket_counts_as_full(redis_url: str, redis_prefix: str) -> None:
    clock = FakeClock()
    lim = RedisLimiter(redis_url, prefix=redis_prefix, clock=clock)
    r = redis.Redis.from_url(redis_url)
    try:
        s = [Subject("key:key_a", LimitSpec(rpm=2))]
        await lim.reserve(s, 1)
        await lim.reserve(s, 1)
        with pytest.raises(RateLimited):
            await lim.reserve(s, 1)
        r.delete(redis_prefix + "b:key:key_a")  # what expiry does once the bucket has refilled
        assert (await lim.reserve(s, 1)).status.remaining_requests == 1
    finally:
        r.close()
        await lim.aclose()


async def test_a_caller_owned_client_is_left_open(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    lim = RedisLimiter(client, prefix=redis_prefix, clock=FakeClock())
    try:
        res = await lim.reserve([Subject("key:key_a", LimitSpec(rpm=5, tpm=100))], 10)
        assert (res.status.remaining_requests, res.status.remaining_tokens) == (4, 90)
        await lim.reconcile(res, 4)
        assert (await lim.usage("key:key_a")).daily_tokens == 4
        await lim.aclose()
        assert await client.ping()
    finally:
        await client.aclose()


async def test_reconcile_that_fails_can_be_retried(redis_url: str, redis_prefix: str) -> None:
    clock = FakeClock()
    lim = RedisLimiter(redis_url, prefix=redis_prefix, clock=clock)
    try:
        res = await lim.reserve([Subject("key:key_a", LimitSpec(tpm=1000))], 500)
        real = lim._reconcile

        async def broken(**kw: object) -> None:
            raise redis.ConnectionError("down")

        lim._reconcile = broken  # type: ignore[assignment]
        with pytest.raises(redis.ConnectionError):
            await lim.reconcile(res, 100)
        assert not res.settled
        lim._reconcile = real
        await lim.reconcile(res, 100)
        assert res.settled and (await lim.usage("key:key_a")).daily_tokens == 100
    finally:
        await lim.aclose()
