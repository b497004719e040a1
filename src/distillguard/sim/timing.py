"""Arrival processes for simulated tenants: diurnal human activity, steady machine rates, slow drips.

All functions are pure given their ``random.Random``; times are seconds since the epoch.
"""

from __future__ import annotations

import math
import random

DAY = 86400.0


def diurnal_weight(ts: float, tz_hours: float, weekend: float = 0.45) -> float:
    """Relative activity at ``ts`` for users in a timezone: low at night, peaks mid-afternoon."""
    local = ts + tz_hours * 3600.0
    hour = (local % DAY) / 3600.0
    day = int(local // DAY + 4) % 7  # 1970-01-01 was a Thursday; 5, 6 = Sat, Sun
    w = 0.06 + math.exp(-(((hour - 11.0) / 3.2) ** 2)) + 0.8 * math.exp(-(((hour - 16.0) / 3.0) ** 2))
    return w * (weekend if day >= 5 else 1.0)


def diurnal_times(rng: random.Random, n: int, t0: float, t1: float, tz_hours: float,
                  burstiness: float = 0.3) -> list[float]:
    """``n`` sorted times in [t0, t1) following the diurnal curve, with a share clustered in bursts."""
    out: list[float] = []
    peak = 1.9
    while len(out) < n:
        t = rng.uniform(t0, t1)
        if rng.random() * peak <= diurnal_weight(t, tz_hours):
            if out and rng.random() < burstiness:  # a burst: close to an earlier event
                t = min(rng.choice(out) + rng.expovariate(1 / 90.0), t1 - 1)
            out.append(t)
    out.sort()
    return out


def steady_times(rng: random.Random, n: int, start: float, interval: float, jitter: float = 0.1) -> list[float]:
    """A machine-paced sequence: one event every ``interval`` s, ± ``jitter`` of it."""
    t = start
    out = []
    for _ in range(n):
        out.append(t)
        t += interval * (1.0 + rng.uniform(-jitter, jitter))
    return out


def working_hours_times(rng: random.Random, n: int, t0: float, t1: float, tz_hours: float,
                        per_hour: float) -> list[float]:
    """Batch jobs started by people: runs of ``per_hour`` steady requests inside local working hours."""
    out: list[float] = []
    t = t0
    while len(out) < n and t < t1:
        local_h = ((t + tz_hours * 3600) % DAY) / 3600
        if not 8.5 <= local_h <= 18.5:
            t += 900.0
            continue
        run = min(n - len(out), rng.randint(20, 400))
        out.extend(steady_times(rng, run, t, 3600.0 / per_hour, jitter=0.25))
        t = out[-1] + rng.uniform(1800.0, 6 * 3600.0)
    if len(out) < n:  # the window ran out: keep going at the same pace
        out.extend(steady_times(rng, n - len(out), (out[-1] if out else t0) + 60, 3600.0 / per_hour, 0.25))
    return out[:n]


def drip_times(rng: random.Random, n: int, t0: float, t1: float) -> list[float]:
    """Slow, irregular requests spread over the whole window (log-normal gaps)."""
    mean_gap = (t1 - t0) / max(n, 1)
    sigma = 0.8
    mu = math.log(mean_gap) - sigma * sigma / 2
    gaps = [rng.lognormvariate(mu, sigma) for _ in range(n)]
    scale = (t1 - t0) * 0.98 / sum(gaps)
    t = t0
    out = []
    for g in gaps:
        t += g * scale
        out.append(t)
    return out


def think_time(rng: random.Random, text_len: int) -> float:
    """A person reading an answer and typing the next turn."""
    return 8.0 + text_len / 40.0 * rng.uniform(0.3, 1.2) + rng.lognormvariate(2.8, 0.8)
