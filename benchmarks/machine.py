"""A fixed pure-Python workload, printed beside benchmark results so that runs on differently fast machines (or on
one virtual machine on different days: the same feature-extraction code measured 46.8 and 59.5 µs per request on
two days here) can be compared: scale a result by the ratio of the two runs' reference times first."""

from __future__ import annotations

import time


def reference_seconds(repeat: int = 3) -> float:
    """Best-of-``repeat`` wall time of 5M integer additions and 200k dict lookups in an interpreted loop."""
    best = float("inf")
    table = {i: i for i in range(1024)}
    for _ in range(repeat):
        t = time.perf_counter()
        s = 0
        for i in range(5_000_000):
            s += i
        for i in range(200_000):
            s += table[i & 1023]
        best = min(best, time.perf_counter() - t)
    return best


def reference_row() -> tuple[str, str]:
    """(label, value) for a benchmark's table."""
    return ("machine: pure-Python reference workload (benchmarks/machine.py)", f"{reference_seconds():.3f} s")
