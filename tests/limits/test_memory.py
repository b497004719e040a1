"""Memory-only behaviour: exactness across threads, bounded memory."""

from __future__ import annotations

import asyncio
import threading

from distillguard.errors import RateLimited
from distillguard.limits.base import LimitSpec, Subject
from distillguard.limits.memory import SWEEP_EVERY_S, MemoryLimiter

from .conftest import FakeClock, utc


def test_exact_across_threads() -> None:
    lim = MemoryLimiter(clock=FakeClock())
    s = [Subject("key:key_a", LimitSpec(rpm=100)), Subject("org:org_x", LimitSpec(tpm=10**6))]
    counts = [0] * 4
    start = threading.Barrier(4)

    def worker(i: int) -> None:
        async def run() -> None:
            start.wait()
            for _ in range(100):
                try:
                    await lim.reserve(s, 10)
                    counts[i] += 1
                except RateLimited:
                    pass

        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 100


async def test_idle_full_subjects_are_evicted() -> None:
    clock = FakeClock(utc(2024, 5, 31, 12))
    lim = MemoryLimiter(clock=clock)
    for i in range(100):
        await lim.reserve([Subject(f"key:k{i}", LimitSpec(rpm=60))], 0)  # no tokens: no quota counts
    await lim.reserve([Subject("key:busy", LimitSpec(rpm=60))], 5)
    assert lim.size == 101
    assert lim.sweep() == 0  # buckets not full yet
    clock.advance(1)
    assert lim.sweep() == 100  # refilled: indistinguishable from new; "busy" holds today's usage
    assert lim.size == 1
    assert (await lim.usage("key:busy")).daily_tokens == 5
    clock.t = utc(2024, 6, 1, 12)
    assert lim.sweep() == 0  # yesterday's count is kept one more day
    assert (await lim.usage("key:busy", now=utc(2024, 5, 31, 12))).daily_tokens == 5
    clock.t = utc(2024, 7, 2)
    assert lim.sweep() == 1 and lim.size == 0


async def test_sweep_runs_by_itself_and_keeps_what_matters() -> None:
    clock = FakeClock()
    lim = MemoryLimiter(clock=clock)
    await lim.reserve([Subject("key:idle", LimitSpec(rpm=60))], 0)
    for _ in range(30):
        await lim.reserve([Subject("key:used", LimitSpec(rpm=30))], 0)
    clock.advance(SWEEP_EVERY_S / 2)
    await lim.reserve([Subject("key:new", LimitSpec(rpm=60))], 0)
    assert lim.size == 3  # too soon for a sweep
    clock.advance(SWEEP_EVERY_S / 2 + 1)
    await lim.reserve([Subject("key:new", LimitSpec(rpm=60))], 0)
    assert lim.size == 1  # "idle" and "used" (refilled after 60 s) are gone
    res = await lim.reserve([Subject("key:used", LimitSpec(rpm=30))], 0)
    assert res.status.remaining_requests == 29


async def test_release_after_eviction_is_harmless() -> None:
    clock = FakeClock()
    lim = MemoryLimiter(clock=clock)
    res = await lim.reserve([Subject("key:a", LimitSpec(tpm=600))], 0)
    clock.advance(120)
    lim.sweep()
    assert lim.size == 0
    await lim.release(res)
    res2 = await lim.reserve([Subject("key:a", LimitSpec(tpm=600))], 600)
    await lim.reconcile(res2, 0)
    assert lim.size == 1
    assert (await lim.reserve([Subject("key:a", LimitSpec(tpm=600))], 600)).status.remaining_tokens == 0
