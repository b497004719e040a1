"""The simulator does not let one request parameter or timing trait separate the classes."""

from __future__ import annotations

import random
from collections import defaultdict

from distillguard.sim import distill, scenarios
from distillguard.sim.generate import build_tenants
from distillguard.sim.tenant import Reply


def _temps_by_org(run) -> dict[str, set]:
    out: dict[str, set] = defaultdict(set)
    for r in run.records:
        out[r["org"]].add(r["request"].get("temperature"))
    return out


def test_a_fixed_temperature_harvester_sends_one_temperature_and_no_n(test_corpus):
    spec_params = {"styles": ("sweep", "selfinstruct", "seed_expansion"), "fixed_temp": 0.7}
    sc = scenarios.Scenario("t", 1.0, (scenarios.Group("h", "harvest", "distillation", 1, 80, (1, 1),
                                                       spec_params, spread=0.0),))
    (_, tenant), = build_tenants(sc, 1, test_corpus)
    gen = distill.harvest(tenant, 80)
    bodies = []
    req = next(gen)
    try:
        while True:
            bodies.append(req.body)
            req = gen.send(Reply(200, "an answer", 1.0))
    except StopIteration:
        pass
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
