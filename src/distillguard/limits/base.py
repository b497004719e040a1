"""The limiter interface shared by the in-process and Redis backends.

Semantics (identical in every backend):

* RPM and TPM are token buckets of capacity ``rpm`` / ``tpm`` refilled continuously at
  ``limit / 60`` per second. A request takes 1 from the request bucket and its reserved
  token estimate from the token bucket.
* Daily and monthly token quotas are fixed UTC calendar windows (day, month) counting
  tokens charged.
* ``reserve`` checks every window of every subject (typically the key and its org) and
  applies all of them, or none, atomically. A refusal raises ``RateLimited`` (RPM/TPM,
  HTTP 429 ``rate_limit_exceeded``) or ``QuotaExceeded`` (daily/monthly, HTTP 429
  ``insufficient_quota``).
* ``reconcile(reservation, actual)`` replaces the reserved token estimate with the tokens
  actually used (prompt + completion) in the TPM buckets and quota counters it was taken
  from; the token bucket may go into debt if actual > reserved. ``release`` is
  ``reconcile(reservation, 0)`` for requests that failed upstream (the request itself stays
  counted against RPM).
* A limit of ``None`` is unlimited.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Sequence


@dataclass(frozen=True, slots=True)
class LimitSpec:
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """One thing limits apply to, e.g. ``Subject("key:key_ab12", spec)`` or ``Subject("org:org_x", spec)``."""

    id: str
    spec: LimitSpec


@dataclass(slots=True)
class RateLimitStatus:
    """What the OpenAI-style ``x-ratelimit-*`` headers report (the tightest subject)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float = 0.0
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float = 0.0


@dataclass(slots=True)
class Reservation:
    subjects: tuple[Subject, ...]
    tokens: int  # tokens reserved (estimate)
    ts: float  # when reserved; fixes the day/month windows the quota was charged to
    status: RateLimitStatus = field(default_factory=RateLimitStatus)
    settled: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens charged to a subject's quota windows containing ``ts``."""

    daily_tokens: int
    monthly_tokens: int


class Limiter(abc.ABC):
    @abc.abstractmethod
    async def reserve(self, subjects: Sequence[Subject], tokens: int, now: float | None = None) -> Reservation:
        """Take one request and ``tokens`` from every subject, or raise RateLimited/QuotaExceeded."""

    @abc.abstractmethod
    async def reconcile(self, reservation: Reservation, actual_tokens: int) -> None:
        """Settle a reservation with the tokens actually used. Idempotent: a second call does nothing."""

    async def release(self, reservation: Reservation) -> None:
        await self.reconcile(reservation, 0)

    @abc.abstractmethod
    async def usage(self, subject_id: str, now: float | None = None) -> Usage:
        """Quota usage of a subject (for tests, the admin API and reconciliation against the ledger)."""

    async def aclose(self) -> None:  # pragma: no cover - default no-op
        return None


def format_reset(seconds: float) -> str:
    """Format a duration as OpenAI does in ``x-ratelimit-reset-*``: ``20ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds <= 0:
        return "0s"
    ms = int(round(seconds * 1000))
    if ms < 1000:
        return f"{max(1, ms)}ms"
    total = int(seconds + 0.999)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"
