"""MMD two-sample test over prompt embeddings: calibrated under the null, powerful on a real shift."""

from __future__ import annotations

import random

import numpy as np
import pytest

from distillguard.detect.twosample import HashingEmbedder, PopulationTest, Reservoir, default_embedder, mmd_test
from distillguard.upstreams.corpus import iter_corpus


@pytest.fixture(scope="module")
def prompts() -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for r in iter_corpus(None):
        user = next((m["content"] for m in r.messages if m["role"] == "user"), "")
        if user:
            by.setdefault(r.source.split("/")[1], []).append(user)
    return by


def test_same_distribution_is_not_rejected_more_often_than_alpha(prompts):
    pool = prompts["GPTeacher"]
    emb = HashingEmbedder()
    low = 0
    trials = 20
    for s in range(trials):
        sample = random.Random(s).sample(pool, 160)
        res = mmd_test(emb.embed(sample[:60]), emb.embed(sample[60:]), permutations=100, seed=s)
        assert 0 < res.p_value <= 1
        low += res.p_value < 0.05
    assert low <= 4  # ~1 expected at alpha 0.05; 5 or more of 20 would mean a miscalibrated test


def test_a_different_prompt_distribution_is_rejected_with_a_readable_reason(prompts):
    emb = HashingEmbedder()
    rng = random.Random(1)
    population = rng.sample(prompts["GPTeacher"], 150) + rng.sample(prompts["alpaca_eval"], 150)
    math = rng.sample(prompts["grade-school-math"], 60)
    res = PopulationTest(population, emb, permutations=200).test(math, seed=3)
    assert res is not None and res.p_value < 0.01 and res.z > 3
    same = PopulationTest(population, emb, permutations=200).test(rng.sample(population, 60), seed=3)
    assert same is not None and same.p_value > res.p_value and same.z < res.z
    assert "MMD" in res.reason() and "hashing" in res.reason()


def test_population_test_excludes_the_accounts_own_prompts(prompts):
    pop = prompts["GPTeacher"][:50]
    t = PopulationTest(pop)
    assert t.test(pop[:20], exclude=pop) is None  # nothing left to compare with
    assert t.test(pop[:5]) is None  # too few prompts to test


def test_mmd_needs_two_rows_each():
    with pytest.raises(ValueError):
        mmd_test(np.zeros((1, 3)), np.zeros((5, 3)))


def test_reservoir_is_uniform_and_reproducible():
    counts = [0] * 10
    for s in range(2000):
        r = Reservoir(3, seed=s)
        for i in range(10):
            r.add(str(i))
        for x in r.items:
            counts[int(x)] += 1
    assert all(abs(c - 600) < 90 for c in counts)  # each item kept with probability 3/10
    a, b = Reservoir(4, "org_x"), Reservoir(4, "org_x")
    for i in range(100):
        a.add(str(i))
        b.add(str(i))
    assert a.items == b.items and a.seen == 100


def test_default_embedder_works_without_the_optional_model():
    e = default_embedder()
    v = e.embed(["hello world", "the cat sat"])
    assert v.shape[0] == 2 and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert default_embedder("hashing").name == "hashing"
