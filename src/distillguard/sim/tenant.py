"""A simulated tenant: its spec, its visible identity, and the protocol its behaviour follows.

A behaviour is a generator: it yields ``Req`` (a request at a simulated time) and is sent back the
``Reply`` (status, text, latency) — so multi-turn conversations carry the answers really returned,
offline (replay) or live (a gateway). ``merge`` interleaves several behaviours by time (a benign
account that also harvests a little).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

from . import identity
from .corpus import SimCorpus

Label = Literal["benign", "distillation", "evaluation"]
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@dataclass(frozen=True, slots=True)
class Req:
    ts: float
    endpoint: str
    body: dict[str, Any]
    key: int = 0  # index into the tenant's keys


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    text: str | None
    latency_s: float


Behaviour = Generator[Req, Reply, None]


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """What a tenant is (hidden) and how much it sends."""

    kind: str  # behaviour name, see behaviours.BEHAVIOURS
    label: Label
    requests: int
    keys: int = 1
    ring: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


@dataclass(slots=True)
class Identity:
    """What the provider sees of a tenant."""

    org: str
    name: str
    use_case: str
    purposes: list[str]
    keys: list[str]
    key_names: list[str]
    ips: list[str]
    user_agents: list[str]  # one per key
    project: str | None = None


@dataclass(slots=True)
class Tenant:
    """One tenant in one scenario run: spec, identity, its own random stream and time window."""

    index: int
    spec: TenantSpec
    ident: Identity
    rng: random.Random
    corpus: SimCorpus
    t0: float
    t1: float
    tz_hours: float
    extra: dict[str, Any] = field(default_factory=dict)

    def ring_rng(self) -> random.Random:
        """A random stream shared by every member of the tenant's ring (or its own when not in one)."""
        return random.Random(derive_seed(self.extra.get("scenario_seed", 0), "ring", self.spec.ring or self.index))


def derive_seed(*parts: Any) -> int:
    """A 64-bit seed from any hashable description (stable across processes, unlike ``hash``)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def make_identity(rng: random.Random, spec: TenantSpec, ring_block: tuple[int, int] | None = None) -> Identity:
    """A neutral visible identity; ``residential`` params give home IPs, ``shared_ua`` one UA for all keys."""
    name = identity.company_name(rng)
    use_case, purposes = identity.use_case(rng)
    n_keys = max(1, spec.keys)
    keys = [identity.hexid(rng, "key") for _ in range(n_keys)]
    names = [identity.key_name(rng, i) for i in range(n_keys)]
    residential = bool(spec.param("residential", False))
    block = ring_block or (None if residential else identity.block16(rng))
    n_ips = max(1, min(n_keys, rng.randint(1, 3)))
    ips = [identity.ip_address(rng, residential, block) for _ in range(n_ips)]
    ua = identity.user_agent(rng)
    uas = [ua if rng.random() < 0.85 else identity.user_agent(rng) for _ in range(n_keys)]
    project = identity.hexid(rng, "proj", 4) if rng.random() < 0.3 else None
    return Identity(org=identity.hexid(rng, "org"), name=name, use_case=use_case, purposes=purposes, keys=keys,
                    key_names=names, ips=ips, user_agents=uas, project=project)


def merge(*gens: Behaviour) -> Behaviour:
    """Interleave behaviours by request time; each gets back the replies to its own requests."""
    heap: list[tuple[float, int, Req]] = []
    for i, g in enumerate(gens):
        try:
            r = next(g)
        except StopIteration:
            continue
        heapq.heappush(heap, (r.ts, i, r))
    while heap:
        _, i, r = heapq.heappop(heap)
        reply = yield r
        try:
            nxt = gens[i].send(reply)
        except StopIteration:
            continue
        heapq.heappush(heap, (nxt.ts, i, nxt))


BehaviourFn = Callable[[Tenant], Behaviour]
