"""The simulator is hard both ways: benign accounts run machine-like side programs, and a 5% harvester can hide
inside its host product's client shape (model, system prompt, parameters)."""

from __future__ import annotations

import io
from collections import defaultdict

import orjson

from distillguard.sim.generate import generate
from distillguard.sim.scenarios import Group, Scenario

SCENARIO = Scenario("hardening-test", 1.0, (
    Group("benign-multi", "multi", "benign", 4, 300, (1, 2), {"side": 0.15}, spread=0.0),
    Group("distill-mixed", "mixed", "distillation", 3, 300, (1, 1), {"share": 0.1, "blend": 1.0}, spread=0.0),
))


def _run(test_corpus):
    out, lab = io.BytesIO(), io.BytesIO()
    generate(SCENARIO, 5, out, lab, split="test", corpus=test_corpus)
    recs = [orjson.loads(x) for x in out.getvalue().splitlines()]
    labels = {d["org"]: d for d in (orjson.loads(x) for x in lab.getvalue().splitlines())}
    by = defaultdict(list)
    for r in recs:
        by[labels[r["org"]]["kind"]].append(r)
    return by


def _shape(r):
    q = r["request"]
    msgs = q.get("messages") or []
    system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else None
    return q.get("model"), system, tuple(sorted(k for k in q if k not in ("messages", "prompt", "stream")))


def test_benign_accounts_run_side_programs_and_blended_harvesters_copy_the_product(test_corpus):
    by = _run(test_corpus)
    per_org = defaultdict(list)
    for r in by["benign-multi"]:
        per_org[r["org"]].append(r)
    assert len(per_org) == 4
    for recs in per_org.values():  # a product plus at least one other program with a real share of the traffic
        counts = defaultdict(int)
        for r in recs:
            counts[_shape(r)] += 1
        big = [c for c in counts.values() if c >= 0.03 * len(recs)]
        assert len(big) >= 2, counts

    mixed = defaultdict(list)
    for r in by["distill-mixed"]:
        mixed[r["org"]].append(r)
    assert len(mixed) == 3
    for recs in mixed.values():  # the harvest requests carry the product's model and system prompt
        assert len({_shape(r)[:2] for r in recs}) == 1
        single = [r for r in recs if sum(m["role"] == "user" for m in r["request"]["messages"]) == 1]
        assert len(single) >= 0.05 * len(recs)


def test_batch_and_finetune_jobs_go_through_distinct_records(test_corpus):
    """A pipeline over documents sends each once: drawing with replacement repeated about a third of the prompts,
    which taught the detector that duplicates mean benign (a harvester resending each prompt twice then hid)."""
    scenario = Scenario("distinct-test", 1.0, (
        Group("benign-batch", "batch", "benign", 2, 150, (1, 1), spread=0.0),
        Group("benign-finetune", "finetune", "benign", 2, 150, (1, 1), spread=0.0),
    ))
    out, lab = io.BytesIO(), io.BytesIO()
    generate(scenario, 3, out, lab, split="test", corpus=test_corpus)
    prompts = defaultdict(list)
    for r in (orjson.loads(x) for x in out.getvalue().splitlines()):
        prompts[r["org"]].append(r["request"]["messages"][-1]["content"])
    assert len(prompts) == 4
    for org, ps in prompts.items():
        assert len(ps) >= 100
        # the compact corpus itself repeats a few ticket texts (~9% of its user prompts are copies); drawing with
        # replacement gave ~0.85 distinct here
        assert len(set(ps)) / len(ps) > 0.92, (org, len(set(ps)), len(ps))


PRODUCTS = Scenario("long-inputs-test", 1.0, (
    Group("benign-chat", "chat", "benign", 12, 40, (1, 1), spread=0.0),
    Group("benign-coding", "coding", "benign", 8, 30, (1, 1), spread=0.0),
    Group("benign-rag", "rag", "benign", 4, 60, (1, 1), spread=0.0),
))


def test_benign_products_resend_long_fixed_blocks(test_corpus):
    """Long input repeated on every request is not a harvester's mark: some products send a long fixed system
    prompt, and a RAG product's knowledge-base chunks come back again and again."""
    out, lab = io.BytesIO(), io.BytesIO()
    generate(PRODUCTS, 3, out, lab, split="test", corpus=test_corpus)
    per_org = defaultdict(list)
    for r in (orjson.loads(x) for x in out.getvalue().splitlines()):
        per_org[r["org"]].append(r["request"]["messages"])
    long_fixed = 0
    chunks_again = 0
    for reqs in per_org.values():
        systems = {m[0]["content"] for m in reqs if m and m[0]["role"] == "system"}
        if len(systems) == 1 and len(next(iter(systems))) >= 1000 and all(m[0]["role"] == "system" for m in reqs):
            long_fixed += 1
        paragraphs = defaultdict(int)
        for m in reqs:
            for p in m[-1]["content"].split("\n\n"):
                if len(p) >= 400:
                    paragraphs[p] += 1
        if any(c >= 2 for c in paragraphs.values()):
            chunks_again += 1
    assert 2 <= long_fixed <= 0.6 * len(per_org)  # some products, not all
    assert chunks_again >= 1
