"""Behaviour every limiter backend must share (run against memory and Redis)."""

from __future__ import annotations

import asyncio

import pytest

from distillguard.errors import QuotaExceeded, RateLimited
from distillguard.limits.base import Limiter, LimitSpec, Subject

from .conftest import Backend, FakeClock, utc


def key(spec: LimitSpec, name: str = "key_a") -> Subject:
    return Subject(f"key:{name}", spec)


def org(spec: LimitSpec, name: str = "org_x") -> Subject:
    return Subject(f"org:{name}", spec)


async def successes(lim: Limiter, subjects: list[Subject], tokens: int, n: int) -> int:
    async def one() -> bool:
        try:
            await lim.reserve(subjects, tokens)
        except RateLimited:
            return False
        return True

    return sum(await asyncio.gather(*(one() for _ in range(n))))


# ---- RPM ---------------------------------------------------------------------------------------


async def test_rpm_refuses_when_empty_and_refills_over_time(lim: Limiter, clock: FakeClock) -> None:
    s = [key(LimitSpec(rpm=60))]
    for _ in range(60):
        await lim.reserve(s, 1)
    with pytest.raises(RateLimited) as ei:
        await lim.reserve(s, 1)
    e = ei.value
    assert e.message == (
        "Rate limit reached for requests per min (RPM) on key key_a: Limit 60, Used 60, Requested 1. "
        "Please try again in 1s."
    )
    assert (e.status, e.code, e.type) == (429, "rate_limit_exceeded", "requests")
    assert e.headers["retry-after"] == "1"
    assert e.headers["x-ratelimit-remaining-requests"] == "0"

    clock.advance(0.5)  # half a request refilled: still refused, sooner
    with pytest.raises(RateLimited) as ei:
        await lim.reserve(s, 1)
    assert "Please try again in 500ms." in ei.value.message
    assert ei.value.headers["retry-after"] == "1"
    assert ei.value.headers["retry-after-ms"] == "500"

    clock.advance(0.5)  # one request refilled (60/min = 1/s)
    await lim.reserve(s, 1)
    with pytest.raises(RateLimited):
        await lim.reserve(s, 1)

    clock.advance(3600)  # refill stops at capacity
    assert await successes(lim, s, 1, 70) == 60


# ---- TPM ---------------------------------------------------------------------------------------


async def test_tpm_reconcile_returns_unused_estimate(lim: Limiter) -> None:
    s = [key(LimitSpec(tpm=10_000))]
    res = await lim.reserve(s, 1000)
    assert res.status.remaining_tokens == 9000
    await lim.reconcile(res, 100)  # 900 go back
    res2 = await lim.reserve(s, 9900)
    assert res2.status.remaining_tokens == 0
    with pytest.raises(RateLimited) as ei:
        await lim.reserve(s, 1)
    e = ei.value
    assert e.type == "tokens" and e.code == "rate_limit_exceeded"
    assert e.message == (
        "Rate limit reached for tokens per min (TPM) on key key_a: Limit 10000, Used 10000, Requested 1. "
        "Please try again in 6ms."
    )
    assert e.headers["retry-after"] == "1"
    assert e.headers["x-ratelimit-limit-tokens"] == "10000"
    assert (await lim.usage("key:key_a")).daily_tokens == 100 + 9900


async def test_tpm_goes_into_debt_when_actual_exceeds_estimate(lim: Limiter, clock: FakeClock) -> None:
    s = [key(LimitSpec(tpm=6000))]  # 100 tokens per second
    res = await lim.reserve(s, 1000)
    await lim.reconcile(res, 7000)  # 6000 more than reserved: level -1000
    with pytest.raises(RateLimited) as ei:
        await lim.reserve(s, 500)
    assert "Used 7000, Requested 500" in ei.value.message
    assert "Please try again in 15s." in ei.value.message  # 1500 tokens at 100/s
    clock.advance(15)
    await lim.reserve(s, 500)
    assert (await lim.usage("key:key_a")).daily_tokens == 7500


async def test_request_larger_than_tpm_is_refused_outright(lim: Limiter) -> None:
    s = [key(LimitSpec(rpm=5, tpm=100))]
    with pytest.raises(RateLimited) as ei:
        await lim.reserve(s, 101)
    e = ei.value
    assert e.code == "rate_limit_exceeded"
    assert e.message.startswith("Request too large for tokens per min (TPM) on key key_a: Limit 100, Requested 101.")
    assert "retry-after" not in e.headers
    res = await lim.reserve(s, 100)  # nothing was charged by the refusal
    assert res.status.remaining_requests == 4
    assert (await lim.usage("key:key_a")).daily_tokens == 100


# ---- quotas ------------------------------------------------------------------------------------


async def test_daily_quota_rolls_over_at_utc_midnight(lim: Limiter, clock: FakeClock) -> None:
    clock.t = utc(2024, 5, 31, 23, 0, 0)
    s = [key(LimitSpec(daily_tokens=1000))]
    await lim.reserve(s, 600)
    with pytest.raises(QuotaExceeded) as ei:
        await lim.reserve(s, 500)
    e = ei.value
    assert (e.status, e.code, e.type) == (429, "insufficient_quota", "insufficient_quota")
    assert e.message == (
        "You exceeded your current daily token quota on key key_a: Limit 1000, Used 600, Requested 500. "
        "The quota resets at 2024-06-01T00:00:00Z."
    )
    await lim.reserve(s, 400)  # exactly up to the quota
    with pytest.raises(QuotaExceeded):
        await lim.reserve(s, 1)
    clock.t = utc(2024, 5, 31, 23, 59, 59)
    with pytest.raises(QuotaExceeded):
        await lim.reserve(s, 1)
    clock.t = utc(2024, 6, 1, 0, 0, 0)
    await lim.reserve(s, 1000)
    assert await lim.usage("key:key_a") == type(await lim.usage("key:key_a"))(1000, 1000)
    assert (await lim.usage("key:key_a", now=utc(2024, 5, 31, 12))).daily_tokens == 1000


async def test_monthly_quota_spans_days_and_rolls_over_with_the_month(lim: Limiter, clock: FakeClock) -> None:
    s = [key(LimitSpec(monthly_tokens=1000))]
    clock.t = utc(2024, 5, 30, 10)
    await lim.reserve(s, 800)
    clock.t = utc(2024, 5, 31, 10)  # a new day, same month
    with pytest.raises(QuotaExceeded) as ei:
        await lim.reserve(s, 300)
    assert ei.value.message == (
        "You exceeded your current monthly token quota on key key_a: Limit 1000, Used 800, Requested 300. "
        "The quota resets at 2024-06-01T00:00:00Z."
    )
    await lim.reserve(s, 200)
    clock.t = utc(2024, 6, 1, 0, 0, 1)
    await lim.reserve(s, 1000)
    usage = await lim.usage("key:key_a")
    assert (usage.daily_tokens, usage.monthly_tokens) == (1000, 1000)
    assert (await lim.usage("key:key_a", now=utc(2024, 5, 31, 10))).monthly_tokens == 1000


async def test_december_rolls_over_into_january(lim: Limiter, clock: FakeClock) -> None:
    s = [key(LimitSpec(monthly_tokens=10))]
    clock.t = utc(2024, 12, 31, 23, 59, 59)
    await lim.reserve(s, 10)
    with pytest.raises(QuotaExceeded) as ei:
        await lim.reserve(s, 1)
    assert "resets at 2025-01-01T00:00:00Z" in ei.value.message
    clock.t = utc(2025, 1, 1)
    await lim.reserve(s, 10)


async def test_reconcile_charges_the_window_of_the_reservation(lim: Limiter, clock: FakeClock) -> None:
    s = [key(LimitSpec(daily_tokens=10_000))]
    clock.t = utc(2024, 5, 31, 23, 59, 59)
    res = await lim.reserve(s, 1000)
    clock.t = utc(2024, 6, 1, 0, 0, 5)
    await lim.reconcile(res, 100)
    assert (await lim.usage("key:key_a", now=utc(2024, 5, 31, 23))).daily_tokens == 100
    assert (await lim.usage("key:key_a")).daily_tokens == 0


async def test_quota_refusal_is_reported_before_a_rate_limit(lim: Limiter) -> None:
    s = [key(LimitSpec(rpm=1, daily_tokens=100))]
    await lim.reserve(s, 100)
    with pytest.raises(QuotaExceeded):  # RPM also refuses, but waiting would not help
        await lim.reserve(s, 1)


# ---- several subjects ---------------------------------------------------------------------------


async def test_org_limit_is_shared_by_its_keys(lim: Limiter) -> None:
    o = org(LimitSpec(rpm=3))
    a = [key(LimitSpec(rpm=10), "key_a"), o]
    b = [key(LimitSpec(rpm=10), "key_b"), o]
    await lim.reserve(a, 1)
    await lim.reserve(a, 1)
    res = await lim.reserve(b, 1)
    assert (res.status.limit_requests, res.status.remaining_requests) == (3, 0)  # the org is tightest
    with pytest.raises(RateLimited) as ei:
        await lim.reserve(b, 1)
    assert "on organization org_x: Limit 3, Used 3" in ei.value.message
    other = [key(LimitSpec(rpm=10), "key_c"), org(LimitSpec(rpm=3), "org_y")]
    await lim.reserve(other, 1)  # another org is unaffected


async def test_all_or_nothing_when_one_subject_refuses(lim: Limiter) -> None:
    k = key(LimitSpec(rpm=10, tpm=10_000, daily_tokens=10_000))
    o = org(LimitSpec(rpm=1))
    await lim.reserve([k, o], 100)
    for _ in range(3):
        with pytest.raises(RateLimited) as ei:
            await lim.reserve([k, o], 100)
        assert "organization org_x" in ei.value.message
    res = await lim.reserve([k], 100)  # the key alone: only the first reservation was charged
    assert res.status.remaining_requests == 8
    assert res.status.remaining_tokens == 10_000 - 200
    assert (await lim.usage("key:key_a")).daily_tokens == 200
    assert (await lim.usage("org:org_x")).daily_tokens == 100


async def test_refusal_by_the_key_leaves_the_org_uncharged(lim: Limiter) -> None:
    k = key(LimitSpec(tpm=100))
    o = org(LimitSpec(rpm=5, tpm=1000))
    await lim.reserve([k, o], 100)
    with pytest.raises(RateLimited) as ei:
        await lim.reserve([k, o], 50)
    assert ei.value.type == "tokens" and "key key_a" in ei.value.message
    res = await lim.reserve([org(LimitSpec(rpm=5, tpm=1000))], 0)
    assert (res.status.remaining_requests, res.status.remaining_tokens) == (3, 900)


async def test_none_is_unlimited(lim: Limiter) -> None:
    s = [key(LimitSpec()), org(LimitSpec())]
    for _ in range(300):
        res = await lim.reserve(s, 1_000_000)
    st = res.status
    assert (st.limit_requests, st.remaining_requests, st.limit_tokens, st.remaining_tokens) == (None,) * 4
    assert (st.reset_requests_s, st.reset_tokens_s) == (0.0, 0.0)
    assert (await lim.usage("org:org_x")).monthly_tokens == 300_000_000  # usage is still counted


# ---- release and settle -----------------------------------------------------------------------


async def test_release_returns_tokens_but_keeps_the_request(lim: Limiter) -> None:
    s = [key(LimitSpec(rpm=2, tpm=1000, daily_tokens=1000))]
    res = await lim.reserve(s, 800)
    await lim.release(res)
    assert res.settled
    res2 = await lim.reserve(s, 1000)  # all tokens back, quota too
    assert res2.status.remaining_requests == 0
    assert (await lim.usage("key:key_a")).daily_tokens == 1000
    with pytest.raises(QuotaExceeded):
        await lim.reserve(s, 1)
    await lim.release(res2)
    with pytest.raises(RateLimited):  # both requests still count against RPM
        await lim.reserve(s, 1)


async def test_reconcile_is_idempotent(lim: Limiter) -> None:
    s = [key(LimitSpec(tpm=1000))]
    res = await lim.reserve(s, 500)
    await lim.reconcile(res, 100)
    await lim.reconcile(res, 100)
    await lim.reconcile(res, 0)
    await lim.release(res)
    assert (await lim.usage("key:key_a")).daily_tokens == 100
    res2 = await lim.reserve(s, 900)
    assert res2.status.remaining_tokens == 0
    await asyncio.gather(*(lim.reconcile(res2, 0) for _ in range(10)))  # concurrent settles: once
    with pytest.raises(RateLimited):
        await lim.reserve(s, 901)
    assert (await lim.reserve(s, 900)).status.remaining_tokens == 0


# ---- status ------------------------------------------------------------------------------------


async def test_status_reports_the_tightest_subject(lim: Limiter, clock: FakeClock) -> None:
    s = [key(LimitSpec(rpm=10, tpm=1000)), org(LimitSpec(rpm=100, tpm=500))]
    res = await lim.reserve(s, 100)
    st = res.status
    assert (st.limit_requests, st.remaining_requests) == (10, 9)
    assert st.reset_requests_s == pytest.approx(6.0)  # one request at 10/min
    assert (st.limit_tokens, st.remaining_tokens) == (500, 400)
    assert st.reset_tokens_s == pytest.approx(12.0)  # 100 tokens at 500/min
    assert res.tokens == 100 and res.ts == clock.t and not res.settled
    clock.advance(3)
    st = (await lim.reserve(s, 0)).status
    assert st.remaining_requests == 8  # 9 + half a request refilled - 1
    assert st.reset_requests_s == pytest.approx(9.0)
    assert st.remaining_tokens == 425


async def test_spec_changes_take_effect_at_once(lim: Limiter) -> None:
    await lim.reserve([key(LimitSpec(rpm=2))], 1)
    await lim.reserve([key(LimitSpec(rpm=2))], 1)
    with pytest.raises(RateLimited):
        await lim.reserve([key(LimitSpec(rpm=2))], 1)
    res = await lim.reserve([key(LimitSpec(rpm=5))], 1)  # raised: what was used stays used
    assert (res.status.limit_requests, res.status.remaining_requests) == (5, 2)
    with pytest.raises(RateLimited) as ei:
        await lim.reserve([key(LimitSpec(rpm=1))], 1)  # lowered: 4 of 5 used leaves nothing of 1
    assert "Limit 1, Used 1, Requested 1. Please try again in 1m0s." in ei.value.message
    await lim.reserve([key(LimitSpec(rpm=None))], 1)  # unlimited now


async def test_zero_limit_refuses_everything(lim: Limiter) -> None:
    with pytest.raises(RateLimited) as ei:
        await lim.reserve([key(LimitSpec(rpm=0))], 1)
    assert "Limit 0, Used 0, Requested 1. Please try again in 1m0s." in ei.value.message
    with pytest.raises(QuotaExceeded):
        await lim.reserve([key(LimitSpec(daily_tokens=0))], 0)


# ---- exactness under concurrency --------------------------------------------------------------


async def test_concurrent_reserves_are_exact(lim: Limiter) -> None:
    s = [key(LimitSpec(rpm=50)), org(LimitSpec(rpm=1000))]
    assert await successes(lim, s, 10, 200) == 50
    res = await lim.reserve([org(LimitSpec(rpm=1000))], 0)
    assert res.status.remaining_requests == 1000 - 51


async def test_two_limiters_on_one_store(backend: Backend) -> None:
    """Two Redis limiters (two clients, like two processes) enforce one limit; memory ones are separate."""
    a, b = backend.make(), backend.make()
    s = [key(LimitSpec(rpm=50))]
    got = await asyncio.gather(successes(a, s, 1, 100), successes(b, s, 1, 100))
    assert sum(got) == (50 if backend.name == "redis" else 100)
