"""Named scenarios: which tenants, how many, how much traffic, over what window.

A scenario is a list of groups; ``Scenario.specs(seed)`` draws every tenant's spec (request count,
keys, disguises) from the seed. ``tag`` names the group in the labels file (``kind``) for per-class
metrics; detectors never see it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .tenant import Label, TenantSpec

Params = dict[str, Any] | Callable[[random.Random], dict[str, Any]]
START = 1_741_000_000.0  # 2025-03-03 11:06 UTC, a Monday


@dataclass(frozen=True, slots=True)
class Group:
    tag: str
    kind: str
    label: Label
    count: int
    requests: int  # mean per tenant (log-normal spread)
    keys: tuple[int, int] = (1, 2)
    params: Params = field(default_factory=dict)
    rings: int = 0  # >0: the group's tenants form this many rings (split evenly)
    spread: float = 0.5


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    days: float
    groups: tuple[Group, ...]
    description: str = ""

    @property
    def t0(self) -> float:
        return START

    @property
    def t1(self) -> float:
        return START + self.days * 86400.0

    def specs(self, seed: int) -> list[tuple[str, TenantSpec]]:
        """(tag, spec) of every tenant, in a stable order."""
        rng = random.Random(f"{self.name}/{seed}/specs")
        out: list[tuple[str, TenantSpec]] = []
        ring_no = 0
        for g in self.groups:
            first_ring = ring_no + 1
            ring_no += g.rings
            for i in range(g.count):
                n = max(3, int(g.requests * rng.lognormvariate(-g.spread ** 2 / 2, g.spread)))
                params = g.params(rng) if callable(g.params) else dict(g.params)
                ring = f"ring-{first_ring + i % g.rings}" if g.rings else None
                spec = TenantSpec(kind=g.kind, label=g.label, requests=n, keys=rng.randint(*g.keys), ring=ring,
                                  params=tuple(sorted(params.items())))
                out.append((g.tag, spec))
        return out


def _harvest(rng: random.Random, fixed_temp: float = 0.35) -> dict[str, Any]:
    """A harvester's habits; with probability ``fixed_temp`` it sends one fixed temperature and no n sweeps."""
    from .distill import STYLES

    p: dict[str, Any] = {"styles": tuple(rng.sample(STYLES[:-1], rng.randint(1, 3))),
                         "rpm": rng.choice((20, 30, 60, 60, 120)), "jitter": rng.choice((0.02, 0.08, 0.3, 0.8))}
    if rng.random() < fixed_temp:
        p["fixed_temp"] = rng.choice((0.7, 0.7, 1.0, 0.8, 0.5))
    return p


def _evasive(paraphrase: float = 0.0, desensitize: float = 0.0, multiturn: float = 0.0,
             residential: bool = False, pad: float = 0.0) -> Callable[[random.Random], dict[str, Any]]:
    def make(rng: random.Random) -> dict[str, Any]:
        p = _harvest(rng, fixed_temp=0.7)
        p.update(paraphrase=paraphrase, desensitize=desensitize, multiturn=multiturn, residential=residential)
        if pad:
            p["pad"] = pad
        if rng.random() < 0.5:
            p["timing"] = rng.choice(("human", "drip"))  # human-like arrivals instead of a steady machine rate
        return p
    return make


def _ring(span_days: float, **kw: Any) -> Callable[[random.Random], dict[str, Any]]:
    base = _evasive(**kw)

    def make(rng: random.Random) -> dict[str, Any]:
        p = base(rng)
        p.pop("styles")  # members share the ring's style mix (Tenant.ring_rng)
        p["span_s"] = span_days * 86400.0 * rng.uniform(0.5, 1.0)
        p["residential"] = rng.random() < 0.5
        return p
    return make


def _benign(count: float, volume: float = 1.0, machine_like: float = 1.0) -> tuple[Group, ...]:
    def c(k: float) -> int:
        return max(1, round(k * count))

    def v(r: float) -> int:
        return max(5, round(r * volume))

    return (
        Group("benign-chat", "chat", "benign", c(150), v(300), (1, 3)),
        Group("benign-chat-small", "chat", "benign", c(50), v(25), (1, 1)),
        Group("benign-coding", "coding", "benign", c(60), v(300), (1, 4)),
        Group("benign-rag", "rag", "benign", c(40), v(200), (1, 2)),
        Group("benign-batch", "batch", "benign", c(40 * machine_like), v(800), (1, 3)),
        Group("benign-finetune", "finetune", "benign", c(20 * machine_like), v(500), (1, 2)),
        Group("benign-multi", "multi", "benign", c(30 * machine_like), v(500), (1, 3)),
    )


def _evals(count: int, requests: int) -> Group:
    return Group("evaluation", "eval", "evaluation", count, requests, (1, 1), spread=0.6)


SCENARIOS: dict[str, Scenario] = {}


def _add(s: Scenario) -> None:
    SCENARIOS[s.name] = s


_add(Scenario("standard", 7.0, _benign(1.0) + (
    Group("distill-harvester", "harvest", "distillation", 40, 1500, (1, 8), _harvest),
    _evals(30, 150),
    Group("distill-drip", "drip", "distillation", 10, 300, (1, 1), _evasive(desensitize=0.3)),
    Group("distill-mixed", "mixed", "distillation", 10, 600, (1, 2), {"share": 0.05, "blend": 0.4}),
    Group("distill-ring", "ring", "distillation", 40, 200, (1, 1), _ring(3.0), rings=1),
    Group("distill-paraphrase", "harvest", "distillation", 5, 800, (1, 3), _evasive(paraphrase=0.8)),
    Group("distill-desensitized", "harvest", "distillation", 5, 800, (1, 3), _evasive(desensitize=0.8)),
), "~500 accounts, ~200k requests over a week: every tenant type"))

_add(Scenario("sybil", 7.0, _benign(0.5) + (
    Group("distill-ring", "ring", "distillation", 20, 400, (1, 1), _ring(2.0), rings=1),
    Group("distill-ring", "ring", "distillation", 60, 250, (1, 1), _ring(3.0, paraphrase=0.5), rings=1),
    Group("distill-ring", "ring", "distillation", 150, 150, (1, 1), _ring(5.0, paraphrase=0.3, desensitize=0.3),
          rings=1),
    Group("distill-harvester", "harvest", "distillation", 5, 1500, (1, 8), _harvest),
    _evals(10, 150),
), "sybil rings of 20, 60 and 150 accounts over benign background"))

_add(Scenario("evasive", 7.0, _benign(0.6, machine_like=2.0) + (
    Group("distill-drip", "drip", "distillation", 20, 300, (1, 1),
          _evasive(desensitize=0.5, residential=True, pad=0.4)),
    Group("distill-mixed", "mixed", "distillation", 30, 600, (1, 2), {"share": 0.05, "blend": 0.4}),
    Group("distill-paraphrase", "harvest", "distillation", 15, 800, (1, 3), _evasive(paraphrase=0.9, pad=0.4)),
    Group("distill-desensitized", "harvest", "distillation", 15, 800, (1, 3), _evasive(desensitize=0.9, pad=0.4)),
    Group("distill-humanlike", "humanlike", "distillation", 15, 500, (1, 2),
          _evasive(paraphrase=0.5, desensitize=0.5, multiturn=0.3, residential=True, pad=0.4)),
    Group("distill-ring", "ring", "distillation", 40, 200, (1, 1),
          _ring(4.0, paraphrase=0.7, desensitize=0.5, pad=0.4), rings=1),
    _evals(20, 150),
), "evasive distillers (drip, 5% mixing, paraphrase, desensitized, human-like, disguised ring; 40% of them pad every "
   "request with a long block) vs machine-like benign"))

_add(Scenario("products", 7.0, (
    Group("benign-chat", "chat", "benign", 40, 300, (1, 3)),
    Group("benign-chat-stateless", "chat", "benign", 40, 300, (1, 2), {"memory": False}),
    Group("benign-qa", "qa", "benign", 40, 300, (1, 2)),
    Group("distill-harvester", "harvest", "distillation", 20, 1000, (1, 4), _harvest),
    Group("distill-humanlike", "humanlike", "distillation", 10, 500, (1, 2),
          _evasive(paraphrase=0.5, desensitize=0.5, multiturn=0.3, residential=True)),
    _evals(5, 150),
), "single-shot products the other scenarios lack (a chat bot without memory, a question-answering app) next to "
   "harvesters: not in the default training set; it measures the single-shot blind spot (ADR 0007, Probes)"))

_add(Scenario("followups", 7.0, (
    Group("benign-chat", "chat", "benign", 40, 300, (1, 3)),
    Group("benign-coding", "coding", "benign", 20, 200, (1, 2)),
    *(Group(f"distill-followup-{share}", "humanlike", "distillation", 15, 500, (1, 2),
            _evasive(paraphrase=0.5, desensitize=0.5, multiturn=share, residential=True))
      for share in (0.0, 0.3, 0.6, 1.0)),
), "human-like harvesters that follow a share (0, 0.3, 0.6, 1) of their instructions with one canned follow-up on "
   "the served answer, next to chat and coding products: not in the default training set; it measures the "
   "multi-turn blind spot by that share (ADR 0007, multi-turn harvesting)"))

_add(Scenario("mixed-small", 2.0, (
    Group("benign-chat", "chat", "benign", 8, 55, (1, 2)),
    Group("benign-coding", "coding", "benign", 3, 40, (1, 2)),
    Group("benign-rag", "rag", "benign", 2, 30, (1, 1)),
    Group("benign-batch", "batch", "benign", 2, 150, (1, 2)),
    Group("benign-finetune", "finetune", "benign", 1, 100, (1, 1)),
    Group("distill-harvester", "harvest", "distillation", 3, 300, (1, 4), _harvest),
    Group("distill-drip", "drip", "distillation", 1, 120, (1, 1), _evasive(desensitize=0.5)),
    Group("distill-mixed", "mixed", "distillation", 2, 200, (1, 1), {"share": 0.05}, spread=0.0),
    Group("distill-humanlike", "humanlike", "distillation", 1, 150, (1, 1), _evasive(paraphrase=0.5, multiturn=0.3)),
    Group("distill-paraphrase", "harvest", "distillation", 1, 200, (1, 2), _evasive(paraphrase=0.9)),
    Group("distill-desensitized", "harvest", "distillation", 1, 200, (1, 2), _evasive(desensitize=0.9)),
    Group("distill-ring", "ring", "distillation", 8, 40, (1, 1), _ring(1.0), rings=1, spread=0.2),
    _evals(3, 100),
), "a few dozen accounts and a few thousand requests of every kind (tests, development)"))

_add(Scenario("demo", 1.0, (
    Group("benign-chat", "chat", "benign", 4, 40, (1, 2)),
    Group("benign-coding", "coding", "benign", 1, 30, (1, 1)),
    Group("benign-batch", "batch", "benign", 1, 80, (1, 1)),
    Group("distill-harvester", "harvest", "distillation", 2, 150, (2, 4), _harvest),
    Group("distill-mixed", "mixed", "distillation", 1, 100, (1, 1), {"share": 0.05}, spread=0.0),
    Group("distill-ring", "ring", "distillation", 6, 30, (1, 1), _ring(0.5), rings=1, spread=0.2),
    _evals(2, 60),
), "~17 accounts, ~800 requests: short enough to drive a live gateway in a demo"))

_add(Scenario("tiny", 0.2, (
    Group("benign-chat", "chat", "benign", 1, 10, (1, 1), spread=0.0),
    Group("distill-harvester", "harvest", "distillation", 1, 10, (1, 1), {"styles": ("grid",), "rpm": 60}, spread=0.0),
    Group("evaluation", "eval", "evaluation", 1, 10, (1, 1), {"benchmarks": ("gsm8k",)}, spread=0.0),
), "3 accounts x 10 requests (live-mode smoke tests)"))


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}") from None
