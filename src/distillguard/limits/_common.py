"""Pieces both limiter backends share: quota windows, refusal errors and the status they report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Literal, NamedTuple

from ..errors import GatewayError, QuotaExceeded, RateLimited
from .base import RateLimitStatus, Subject, format_reset

EPS = 1e-9  # float slack when comparing a refilled level with what is needed
QUOTA_MARGIN_S = 86_400  # quota counters outlive their window by this much (late reconciles, usage of yesterday)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

Refusal = Literal["too_large", "daily", "monthly", "rpm", "tpm"]
# When several windows refuse, report the one retrying soon cannot fix first.
PRIORITY: dict[str, int] = {"too_large": 0, "daily": 1, "monthly": 2, "rpm": 3, "tpm": 4}


class Windows(NamedTuple):
    """The UTC day and month containing an instant."""

    day: int  # days since the epoch
    day_label: str  # YYYYMMDD
    day_end: float  # epoch seconds of the next midnight
    month: int  # year * 12 + month - 1
    month_label: str  # YYYYMM
    month_end: float  # epoch seconds of the first instant of next month


@lru_cache(maxsize=64)
def _windows_of_day(day: int) -> Windows:
    d = date.fromordinal(_EPOCH_ORDINAL + day)
    ny, nm = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    month_end = datetime(ny, nm, 1, tzinfo=UTC).timestamp()
    return Windows(
        day,
        f"{d.year:04d}{d.month:02d}{d.day:02d}",
        (day + 1) * 86_400.0,
        d.year * 12 + d.month - 1,
        f"{d.year:04d}{d.month:02d}",
        month_end,
    )


def windows(ts: float) -> Windows:
    """Quota windows of ``ts`` (cached per day, so cheap on the hot path)."""
    return _windows_of_day(int(ts // 86_400))


def label(subject_id: str) -> str:
    """``key:key_x`` -> ``key key_x``; ``org:org_x`` -> ``organization org_x`` (as in OpenAI's messages)."""
    kind, sep, rest = subject_id.partition(":")
    if not sep:
        return subject_id
    return f"{'organization' if kind == 'org' else kind} {rest}"


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal_error(
    kind: str, subject_id: str, limit: int, used: float, requested: int, wait_s: float, now: float
) -> GatewayError:
    """The error a refused reservation raises (OpenAI's wording)."""
    who = label(subject_id)
    used_i = max(0, math.ceil(used - EPS))
    if kind == "too_large":
        return RateLimited(
            f"Request too large for tokens per min (TPM) on {who}: Limit {limit}, Requested {requested}. "
            "The input or output tokens must be reduced in order to run successfully.",
            code="rate_limit_exceeded",
            type="tokens",
        )
    if kind in ("daily", "monthly"):
        w = windows(now)
        reset_at = w.day_end if kind == "daily" else w.month_end
        return QuotaExceeded(
            f"You exceeded your current {kind} token quota on {who}: Limit {limit}, Used {used_i}, "
            f"Requested {requested}. The quota resets at {_utc(reset_at)}.",
        )
    what, unit = ("requests", "RPM") if kind == "rpm" else ("tokens", "TPM")
    wait_s = max(wait_s, 0.001)
    return RateLimited(
        f"Rate limit reached for {what} per min ({unit}) on {who}: Limit {limit}, Used {used_i}, "
        f"Requested {requested}. Please try again in {format_reset(wait_s)}.",
        code="rate_limit_exceeded",
        type=what,
        headers={
            "retry-after": str(max(1, math.ceil(wait_s - EPS))),
            "retry-after-ms": str(max(1, math.ceil(wait_s * 1000 - EPS))),
            f"x-ratelimit-limit-{what}": str(limit),
            f"x-ratelimit-remaining-{what}": "0",
            f"x-ratelimit-reset-{what}": format_reset(wait_s),
        },
    )


def make_status(
    subjects: Sequence[Subject], req_levels: Sequence[float | None], tok_levels: Sequence[float | None]
) -> RateLimitStatus:
    """Status after a reservation: for requests and for tokens, the subject with the least remaining."""
    st = RateLimitStatus()
    best_r = best_t = math.inf
    for s, rl, tl in zip(subjects, req_levels, tok_levels):
        spec = s.spec
        if rl is not None and spec.rpm is not None:
            rem = max(0, math.floor(rl + EPS))
            if rem < best_r:
                best_r = rem
                st.limit_requests = spec.rpm
                st.remaining_requests = rem
                st.reset_requests_s = (spec.rpm - rl) * 60.0 / spec.rpm if spec.rpm > 0 else 0.0
        if tl is not None and spec.tpm is not None:
            rem = max(0, math.floor(tl + EPS))
            if rem < best_t:
                best_t = rem
                st.limit_tokens = spec.tpm
                st.remaining_tokens = rem
                st.reset_tokens_s = (spec.tpm - tl) * 60.0 / spec.tpm if spec.tpm > 0 else 0.0
    if st.reset_requests_s < 0:
        st.reset_requests_s = 0.0
    if st.reset_tokens_s < 0:
        st.reset_tokens_s = 0.0
    return st
