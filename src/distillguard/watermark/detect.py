"""Detection: exact one-sided binomial test of keyed hits over deduplicated slots, across keys and orgs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from scipy.stats import binomtest

from .embed import _PAIR_RE
from .keys import OrgKey
from .lexicon import Lexicon
from .walker import Slot, Walker


@dataclass(frozen=True, slots=True)
class Position:
    """One scored slot: its context, its set, the variant the text has, and the set's size."""

    context: str
    set_id: int
    index: int
    size: int


@dataclass(frozen=True, slots=True)
class Score:
    hits: int
    trials: int  # fair bits scored (1 per 2-variant slot, 2 per 4-variant slot)
    p_value: float
    z: float


@dataclass(frozen=True, slots=True)
class Verdict:
    detected: bool
    p_value: float
    z: float
    tokens_scored: int
    org: str | None
    version: int | None = None

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("version")
        return d


def positions(text: str, lexicon: Lexicon) -> list[Position]:
    """The scorable slots of a text, each (context, set) once: repeated text adds no evidence."""
    seen: set[tuple[str, int]] = set()
    out: list[Position] = []

    def record(slot: Slot) -> None:
        if slot.detectable() and (slot.context, slot.alt.id) not in seen:
            seen.add((slot.context, slot.alt.id))
            out.append(Position(slot.context, slot.alt.id, slot.index, len(slot.alt.variants)))

    w = Walker(lexicon, record, keep_text=False)
    for m in _PAIR_RE.finditer(text):
        w.pair(m.group(1), m.group(2))
    w.finish()
    return out


def merge(groups: Iterable[list[Position]]) -> list[Position]:
    """The positions of several texts (e.g. many answers of one account) as one sample, each (context, set) once."""
    seen: set[tuple[str, int]] = set()
    out: list[Position] = []
    for pos in groups:
        for p in pos:
            if (p.context, p.set_id) not in seen:
                seen.add((p.context, p.set_id))
                out.append(p)
    return out


def score(pos: list[Position], key: OrgKey) -> Score:
    hits = trials = 0
    for p in pos:
        g = key.choice(p.context, p.set_id, p.size)
        if p.size == 2:
            trials += 1
            hits += g == p.index
        else:  # two independent fair bits
            trials += 2
            hits += ((g ^ p.index) & 1 == 0) + ((g ^ p.index) & 2 == 0)
    if trials == 0:
        return Score(0, 0, 1.0, 0.0)
    p_value = float(binomtest(hits, trials, 0.5, alternative="greater").pvalue)
    z = (hits - trials / 2) / math.sqrt(trials / 4)
    return Score(hits, trials, p_value, z)


def detect(pos: list[Position], keys: Iterable[OrgKey], threshold: float = 1e-6) -> Verdict:
    """Test every key; Bonferroni-correct the smallest p-value by the number of keys tested."""
    keys = list(keys)
    trials = sum(1 if p.size == 2 else 2 for p in pos)
    if not keys:
        return Verdict(False, 1.0, 0.0, trials, None)
    best: tuple[Score, OrgKey] | None = None
    for k in keys:
        s = score(pos, k)
        if best is None or s.p_value < best[0].p_value or (s.p_value == best[0].p_value and s.z > best[0].z):
            best = (s, k)
    assert best is not None
    s, k = best
    p = min(1.0, s.p_value * len(keys))
    detected = p < threshold
    return Verdict(detected, p, round(s.z, 4), s.trials, k.org_id if detected else None, k.version if detected else None)
