"""The simulator does not let one request parameter or timing trait separate the classes."""

from __future__ import annotations

import random
import re
from collections import defaultdict

from distillguard.sim import distill, scenarios
from distillguard.sim.generate import build_tenants
from distillguard.sim.tenant import Reply


def _temps_by_org(run) -> dict[str, set]:
    out: dict[str, set] = defaultdict(set)
    for r in run.records:
        out[r["org"]].add(r["request"].get("temperature"))
    return out


def _bodies(tenant, n):
    gen = distill.harvest(tenant, n)
    bodies, req = [], next(gen)
    try:
        while True:
            bodies.append(req.body)
            req = gen.send(Reply(200, "an answer", 1.0))
    except StopIteration:
        pass
    return bodies


def test_a_fixed_temperature_harvester_sends_one_temperature_and_no_n(test_corpus):
    spec_params = {"styles": ("sweep", "selfinstruct", "seed_expansion"), "fixed_temp": 0.7}
    sc = scenarios.Scenario("t", 1.0, (scenarios.Group("h", "harvest", "distillation", 1, 80, (1, 1),
                                                       spec_params, spread=0.0),))
    (_, tenant), = build_tenants(sc, 1, test_corpus)
    bodies = _bodies(tenant, 80)
    assert len(bodies) == 80
    assert {b.get("temperature") for b in bodies} == {0.7}
    assert all("n" not in b and "top_p" not in b for b in bodies)


def test_evasive_harvesters_draw_fixed_temperatures_and_human_timing():
    rng = random.Random(3)
    make = scenarios._evasive(paraphrase=0.5)
    params = [make(rng) for _ in range(200)]
    assert 0.55 < sum("fixed_temp" in p for p in params) / 200 < 0.85
    assert 0.35 < sum(p.get("timing") in ("human", "drip") for p in params) / 200 < 0.65


def test_some_benign_accounts_vary_their_temperature(small_run):
    kind = {x["org"]: x["kind"] for x in small_run.labels}
    varied = [o for o, ts in _temps_by_org(small_run).items() if kind[o].startswith("benign") and len(ts) >= 3]
    assert varied, "no benign account uses three or more temperatures"


def test_a_padding_harvester_puts_one_long_block_before_every_prompt(test_corpus):
    """``pad``: the harvester (decided once per harvester or ring) pads every request with the same long block, as
    a system prompt or as a preamble of the prompt; without ``pad`` nothing is padded."""
    seen = set()
    for seed in range(1, 12):
        sc = scenarios.Scenario("t", 1.0, (scenarios.Group("h", "harvest", "distillation", 1, 30, (1, 1),
                                                           {"styles": ("alpaca",), "pad": 1.0}, spread=0.0),))
        (_, tenant), = build_tenants(sc, seed, test_corpus)
        bodies = _bodies(tenant, 30)
        systems = {b["messages"][0]["content"] for b in bodies if b["messages"][0]["role"] == "system"}
        if systems:
            block, = systems
            assert len(bodies) == 30 and all(b["messages"][0]["content"] == block for b in bodies)
            seen.add("system")
        else:
            heads = {b["messages"][-1]["content"].split("\n\n", 1)[0] for b in bodies}
            block, = heads
            seen.add("preamble")
        assert 1500 <= len(block) <= 3300 and set(re.split(r"(?<=\.) ", block)) <= set(distill.PADDING)
    assert seen == {"system", "preamble"}
    sc = scenarios.Scenario("t", 1.0, (scenarios.Group("h", "harvest", "distillation", 1, 30, (1, 1),
                                                       {"styles": ("alpaca",)}, spread=0.0),))
    (_, tenant), = build_tenants(sc, 1, test_corpus)
    assert all(len(b["messages"][-1]["content"]) < 1500 and b["messages"][0]["role"] == "user"
               for b in _bodies(tenant, 30))
