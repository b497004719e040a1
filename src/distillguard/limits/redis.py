"""Redis limiter: one limit shared by every gateway process that points at the same Redis.

``reserve`` and ``reconcile`` are each a single Lua script (EVALSHA, one round trip) over all keys
of all subjects, so check-and-apply is atomic across processes.

Time comes from the caller's clock (``clock``, default ``time.time``, or ``now=``), passed to the
scripts as ARGV: the scripts never read Redis ``TIME``. Buckets only ever move forward in time
(a timestamp older than the stored one refills nothing), so small clock skew between gateway hosts
cannot mint capacity. Quota windows are UTC calendar days/months of that clock.

Keys (all under ``prefix``):

* ``{prefix}b:{subject}`` hash ``r rt rc t tt tc`` = request/token bucket level, timestamp, capacity.
  It expires once the buckets would be full again (a missing bucket is a full one).
* ``{prefix}d:{YYYYMMDD}:{subject}`` / ``{prefix}m:{YYYYMM}:{subject}`` = tokens charged in that
  window, expiring one day after the window ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from ._common import QUOTA_MARGIN_S, make_status, refusal_error, windows
from .base import Limiter, Reservation, Subject, Usage

_LUA_COMMON = """
local now = tonumber(ARGV[1])
local EPS = 1e-9
local function fmt(x) return string.format('%.17g', x) end
-- level at `now` of a bucket stored as (lv, ts, oldcap), under capacity `cap`; missing = full
local function level(lv, ts, oldcap, cap)
  if not lv then return cap end
  lv = tonumber(lv); ts = tonumber(ts); oldcap = tonumber(oldcap)
  if oldcap ~= cap then
    local moved = lv + (cap - oldcap)
    if cap > oldcap or moved > 0 then lv = moved elseif lv > 0 then lv = 0 end
  end
  if now > ts then lv = lv + (now - ts) * cap / 60 end
  if lv > cap then lv = cap end
  return lv
end
local function later(ts)
  if ts and tonumber(ts) > now then return ts end
  return fmt(now)
end
local function full_in_ms(lv, cap)
  if cap <= 0 then return 0 end
  return math.ceil((cap - lv) * 60000 / cap)
end
"""

# KEYS: per subject: bucket hash, day counter, month counter.
# ARGV: now, tokens, day_ttl, month_ttl, then per subject: rpm, tpm, daily, monthly (-1 = unlimited).
# Returns {1, r1, t1, r2, t2, ...} (levels after the reservation, '' = no bucket) or
# {0, kind, subject_index, limit, used, requested, wait_s}.
_RESERVE = (
    _LUA_COMMON
    + """
local tokens = tonumber(ARGV[2])
local day_ttl = tonumber(ARGV[3])
local month_ttl = tonumber(ARGV[4])
local n = #KEYS / 3
local PRI = {too_large = 0, daily = 1, monthly = 2, rpm = 3, tpm = 4}
local fail, fpri = nil, 99
local plan = {}
local function refuse(kind, i, limit, used, requested, wait)
  if PRI[kind] < fpri then
    fpri = PRI[kind]
    fail = {0, kind, i, fmt(limit), fmt(used), fmt(requested), fmt(wait)}
  end
end
local function wait_s(need, lv, cap)
  if cap <= 0 then return 60 end
  return (need - lv) * 60 / cap
end
for i = 1, n do
  local a = 4 + (i - 1) * 4
  local rpm, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local dq, mq = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local h = redis.call('HMGET', KEYS[3 * i - 2], 'r', 'rt', 'rc', 't', 'tt', 'tc')
  local p = {h = h, rpm = rpm, tpm = tpm}
  if tpm >= 0 and tokens > tpm then refuse('too_large', i, tpm, 0, tokens, 0) end
  if dq >= 0 then
    local used = tonumber(redis.call('GET', KEYS[3 * i - 1]) or '0')
    if used + math.max(tokens, 1) > dq then refuse('daily', i, dq, used, tokens, 0) end
  end
  if mq >= 0 then
    local used = tonumber(redis.call('GET', KEYS[3 * i]) or '0')
    if used + math.max(tokens, 1) > mq then refuse('monthly', i, mq, used, tokens, 0) end
  end
  if rpm >= 0 then
    p.r = level(h[1], h[2], h[3], rpm)
    if p.r < 1 - EPS then refuse('rpm', i, rpm, rpm - p.r, 1, wait_s(1, p.r, rpm)) end
  end
  if tpm >= 0 then
    p.t = level(h[4], h[5], h[6], tpm)
    if p.t < tokens - EPS then refuse('tpm', i, tpm, tpm - p.t, tokens, wait_s(tokens, p.t, tpm)) end
  end
  plan[i] = p
end
if fail then return fail end
local out = {1}
for i = 1, n do
  local p = plan[i]
  local h = p.h
  local bk = KEYS[3 * i - 2]
  local ttl = 0
  local r, t = '', ''
  if p.r then
    r = fmt(p.r - 1)
    redis.call('HSET', bk, 'r', r, 'rt', later(h[2]), 'rc', p.rpm)
    ttl = math.max(ttl, full_in_ms(p.r - 1, p.rpm))
  elseif h[3] then
    redis.call('HDEL', bk, 'r', 'rt', 'rc')
  end
  if p.t then
    t = fmt(p.t - tokens)
    redis.call('HSET', bk, 't', t, 'tt', later(h[5]), 'tc', p.tpm)
    ttl = math.max(ttl, full_in_ms(p.t - tokens, p.tpm))
  elseif h[6] then
    redis.call('HDEL', bk, 't', 'tt', 'tc')
  end
  if p.r or p.t then redis.call('PEXPIRE', bk, ttl + 2000) end
  if tokens > 0 then
    redis.call('INCRBY', KEYS[3 * i - 1], tokens)
    redis.call('EXPIRE', KEYS[3 * i - 1], day_ttl)
    redis.call('INCRBY', KEYS[3 * i], tokens)
    redis.call('EXPIRE', KEYS[3 * i], month_ttl)
  end
  out[2 * i] = r
  out[2 * i + 1] = t
end
return out
"""
)

# KEYS: per subject: bucket hash, day counter and month counter of the reservation's windows.
# ARGV: now, delta (actual - reserved), day_ttl, month_ttl, then per subject: tpm (-1 = no bucket).
_RECONCILE = (
    _LUA_COMMON
    + """
local delta = tonumber(ARGV[2])
local ttls = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local n = #KEYS / 3
for i = 1, n do
  local tpm = tonumber(ARGV[4 + i])
  local bk = KEYS[3 * i - 2]
  if tpm >= 0 then
    local h = redis.call('HMGET', bk, 't', 'tt', 'tc')
    if h[1] or delta > 0 then
      local cap = tpm
      if h[3] then cap = tonumber(h[3]) end
      local lv = level(h[1], h[2], h[3], cap) - delta
      if lv > cap then lv = cap end
      redis.call('HSET', bk, 't', fmt(lv), 'tt', later(h[2]), 'tc', cap)
      local need = full_in_ms(lv, cap) + 2000
      if redis.call('PTTL', bk) < need then redis.call('PEXPIRE', bk, need) end
    end
  end
  for j = 1, 2 do
    local k = KEYS[3 * i - 2 + j]
    if redis.call('EXISTS', k) == 1 then
      if redis.call('INCRBY', k, delta) < 0 then redis.call('SET', k, 0, 'KEEPTTL') end
    elseif delta > 0 and ttls[j] > 0 then
      redis.call('SET', k, delta, 'EX', ttls[j])
    end
  end
end
return 1
"""
)


def _num(v: Any) -> float | None:
    return None if v in (b"", "") else float(v)


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisLimiter(Limiter):
    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        prefix: str = "dg:lim:",
        clock: Callable[[], float] = time.time,
        *,
        max_connections: int = 64,
        pool_timeout_s: float = 5.0,
    ) -> None:
        """``url_or_client``: a ``redis://`` URL (the limiter owns and closes the client) or a
        ``redis.asyncio.Redis`` the caller owns. ``clock``: seconds since the epoch (tests inject one)."""
        if isinstance(url_or_client, str):
            # A blocking pool: a burst beyond max_connections waits for a connection instead of failing.
            pool = aioredis.BlockingConnectionPool.from_url(
                url_or_client, max_connections=max_connections, timeout=pool_timeout_s
            )
            self._redis = aioredis.Redis(connection_pool=pool)
            self._own = True
        else:
            self._redis = url_or_client
            self._own = False
        self._prefix = prefix
        self._clock = clock
        self._reserve = self._redis.register_script(_RESERVE)
        self._reconcile = self._redis.register_script(_RECONCILE)

    def _keys(self, subject_id: str, day_label: str, month_label: str) -> tuple[str, str, str]:
        p = self._prefix
        return f"{p}b:{subject_id}", f"{p}d:{day_label}:{subject_id}", f"{p}m:{month_label}:{subject_id}"

    async def reserve(self, subjects: Sequence[Subject], tokens: int, now: float | None = None) -> Reservation:
        if now is None:
            now = self._clock()
        tokens = max(0, int(tokens))
        subs = tuple(subjects)
        if not subs:
            return Reservation(subs, tokens, now)
        w = windows(now)
        keys: list[str] = []
        args: list[Any] = [
            now,
            tokens,
            math.ceil(w.day_end - now) + QUOTA_MARGIN_S,
            math.ceil(w.month_end - now) + QUOTA_MARGIN_S,
        ]
        for s in subs:
            keys.extend(self._keys(s.id, w.day_label, w.month_label))
            sp = s.spec
            args.extend(-1 if v is None else v for v in (sp.rpm, sp.tpm, sp.daily_tokens, sp.monthly_tokens))
        out = await self._reserve(keys=keys, args=args)
        if int(out[0]) != 1:
            _, kind, idx, limit, used, requested, wait = out
            raise refusal_error(
                _str(kind),
                subs[int(idx) - 1].id,
                int(float(limit)),
                float(used),
                int(float(requested)),
                float(wait),
                now,
            )
        req = [_num(out[1 + 2 * i]) for i in range(len(subs))]
        tok = [_num(out[2 + 2 * i]) for i in range(len(subs))]
        return Reservation(subs, tokens, now, make_status(subs, req, tok))

    async def reconcile(self, reservation: Reservation, actual_tokens: int) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        delta = max(0, int(actual_tokens)) - reservation.tokens
        if delta == 0 or not reservation.subjects:
            return
        now = self._clock()
        w = windows(reservation.ts)
        keys: list[str] = []
        args: list[Any] = [
            now,
            delta,
            math.ceil(w.day_end - now) + QUOTA_MARGIN_S,
            math.ceil(w.month_end - now) + QUOTA_MARGIN_S,
        ]
        for s in reservation.subjects:
            keys.extend(self._keys(s.id, w.day_label, w.month_label))
            args.append(-1 if s.spec.tpm is None else s.spec.tpm)
        try:
            await self._reconcile(keys=keys, args=args)
        except BaseException:
            reservation.settled = False  # not applied: the caller may try again
            raise

    async def usage(self, subject_id: str, now: float | None = None) -> Usage:
        w = windows(self._clock() if now is None else now)
        _, day_key, month_key = self._keys(subject_id, w.day_label, w.month_label)
        d, m = await self._redis.mget(day_key, month_key)
        return Usage(int(d or 0), int(m or 0))

    async def aclose(self) -> None:
        if self._own:
            await self._redis.aclose()
