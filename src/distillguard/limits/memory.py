"""In-process limiter: exact within one process (asyncio tasks and threads alike).

State lives in a dict of per-subject records guarded by one ``threading.Lock``; the critical
section is plain arithmetic and never awaits. Buckets appear lazily on first use and a record is
evicted by a periodic sweep once both buckets are full again (indistinguishable from a fresh one)
and it holds no quota count of the current or previous window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from ._common import EPS, PRIORITY, make_status, refusal_error, windows
from .base import Limiter, Reservation, Subject, Usage

SWEEP_EVERY_S = 60.0


class _State:
    """One subject: request bucket, token bucket (cap ``None`` = no bucket), quota counts by window."""

    __slots__ = ("days", "months", "rcap", "rlev", "rts", "tcap", "tlev", "tts")

    def __init__(self) -> None:
        self.rcap: int | None = None
        self.rlev = 0.0
        self.rts = 0.0
        self.tcap: int | None = None
        self.tlev = 0.0
        self.tts = 0.0
        self.days: dict[int, int] = {}
        self.months: dict[int, int] = {}


def _level(old_cap: int | None, lev: float, ts: float, cap: int, now: float) -> float:
    """Bucket level at ``now`` under capacity ``cap`` (a new bucket is full).

    A changed capacity keeps what was used (the level moves by the difference), except that
    lowering it empties the bucket at most: it never creates debt.
    """
    if old_cap is None:
        return float(cap)
    if old_cap != cap:
        moved = lev + (cap - old_cap)
        lev = moved if cap > old_cap or moved > 0 else min(lev, 0.0)
    if now > ts:
        lev += (now - ts) * cap / 60.0
    return float(cap) if lev > cap else lev


def _wait(need: float, lev: float, cap: int) -> float:
    return (need - lev) * 60.0 / cap if cap > 0 else 60.0


class MemoryLimiter(Limiter):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._last_sweep: float | None = None

    @property
    def size(self) -> int:
        """Number of subjects currently held in memory."""
        return len(self._states)

    async def reserve(self, subjects: Sequence[Subject], tokens: int, now: float | None = None) -> Reservation:
        if now is None:
            now = self._clock()
        tokens = max(0, int(tokens))
        w = windows(now)
        day, month = w.day, w.month
        req_levels: list[float | None] = []
        tok_levels: list[float | None] = []
        fail: tuple[int, str, str, int, float, int, float] | None = None
        with self._lock:
            states = self._states
            if self._last_sweep is None:
                self._last_sweep = now
            elif now - self._last_sweep >= SWEEP_EVERY_S:
                self._sweep_locked(now)
            plan: list[_State] = []
            for s in subjects:
                st = states.get(s.id)
                if st is None:
                    st = states[s.id] = _State()
                plan.append(st)
                spec = s.spec
                rl = tl = None
                if spec.tpm is not None and tokens > spec.tpm:
                    fail = _worse(fail, ("too_large", s.id, spec.tpm, 0.0, tokens, 0.0))
                if spec.daily_tokens is not None:
                    used = st.days.get(day, 0)
                    if used + max(tokens, 1) > spec.daily_tokens:
                        fail = _worse(fail, ("daily", s.id, spec.daily_tokens, used, tokens, 0.0))
                if spec.monthly_tokens is not None:
                    used = st.months.get(month, 0)
                    if used + max(tokens, 1) > spec.monthly_tokens:
                        fail = _worse(fail, ("monthly", s.id, spec.monthly_tokens, used, tokens, 0.0))
                if spec.rpm is not None:
                    rl = _level(st.rcap, st.rlev, st.rts, spec.rpm, now)
                    if rl < 1.0 - EPS:
                        fail = _worse(fail, ("rpm", s.id, spec.rpm, spec.rpm - rl, 1, _wait(1.0, rl, spec.rpm)))
                if spec.tpm is not None:
                    tl = _level(st.tcap, st.tlev, st.tts, spec.tpm, now)
                    if tl < tokens - EPS:
                        fail = _worse(fail, ("tpm", s.id, spec.tpm, spec.tpm - tl, tokens, _wait(tokens, tl, spec.tpm)))
                req_levels.append(rl)
                tok_levels.append(tl)
            if fail is None:
                for i, s in enumerate(subjects):
                    st = plan[i]
                    spec = s.spec
                    rl = req_levels[i]
                    if rl is None:
                        st.rcap = None
                    else:
                        rl -= 1.0
                        req_levels[i] = rl
                        st.rcap, st.rlev = spec.rpm, rl
                        st.rts = max(st.rts, now)
                    tl = tok_levels[i]
                    if tl is None:
                        st.tcap = None
                    else:
                        tl -= tokens
                        tok_levels[i] = tl
                        st.tcap, st.tlev = spec.tpm, tl
                        st.tts = max(st.tts, now)
                    if tokens:
                        st.days[day] = st.days.get(day, 0) + tokens
                        st.months[month] = st.months.get(month, 0) + tokens
        if fail is not None:
            _, kind, sid, limit, f_used, requested, wait = fail
            raise refusal_error(kind, sid, limit, f_used, requested, wait, now)
        subs = tuple(subjects)
        return Reservation(subs, tokens, now, make_status(subs, req_levels, tok_levels))

    async def reconcile(self, reservation: Reservation, actual_tokens: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        delta = max(0, int(actual_tokens)) - reservation.tokens
        if delta == 0:
            return
        now = self._clock()
        w = windows(reservation.ts)
        with self._lock:
            for s in reservation.subjects:
                st = self._states.get(s.id)
                if st is None:
                    if delta < 0:
                        continue  # evicted: buckets full, no counts left to give back to
                    st = self._states[s.id] = _State()
                if s.spec.tpm is not None:
                    cap = st.tcap if st.tcap is not None else s.spec.tpm
                    lev = _level(st.tcap, st.tlev, st.tts, cap, now) - delta
                    st.tcap, st.tlev = cap, (float(cap) if lev > cap else lev)
                    st.tts = max(st.tts, now)
                _add(st.days, w.day, delta)
                _add(st.months, w.month, delta)

    async def usage(self, subject_id: str, now: float | None = None) -> Usage:
        w = windows(self._clock() if now is None else now)
        with self._lock:
            st = self._states.get(subject_id)
            if st is None:
                return Usage(0, 0)
            return Usage(st.days.get(w.day, 0), st.months.get(w.month, 0))

    def sweep(self, now: float | None = None) -> int:
        """Drop old quota windows and subjects that hold nothing a fresh record would not. Returns how many."""
        with self._lock:
            return self._sweep_locked(self._clock() if now is None else now)

    def _sweep_locked(self, now: float) -> int:
        self._last_sweep = now
        w = windows(now)
        gone: list[str] = []
        for sid, st in self._states.items():
            if st.days:
                for d in [d for d in st.days if d < w.day - 1]:
                    del st.days[d]
            if st.months:
                for m in [m for m in st.months if m < w.month - 1]:
                    del st.months[m]
            if st.days or st.months:
                continue
            if st.rcap is not None and _level(st.rcap, st.rlev, st.rts, st.rcap, now) < st.rcap - EPS:
                continue
            if st.tcap is not None and _level(st.tcap, st.tlev, st.tts, st.tcap, now) < st.tcap - EPS:
                continue
            gone.append(sid)
        for sid in gone:
            del self._states[sid]
        return len(gone)


def _worse(
    cur: tuple[int, str, str, int, float, int, float] | None, new: tuple[str, str, int, float, int, float]
) -> tuple[int, str, str, int, float, int, float]:
    """Keep the refusal to report: the highest priority one, the first subject on ties."""
    p = PRIORITY[new[0]]
    if cur is None or p < cur[0]:
        return (p, *new)
    return cur


def _add(counts: dict[int, int], window: int, delta: int) -> None:
    cur = counts.get(window)
    if cur is None:
        if delta > 0:
            counts[window] = delta
    else:
        counts[window] = max(0, cur + delta)
