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


def test_annotate_adds_the_test_to_flagged_accounts_only(prompts):
    from distillguard.detect.engine import AccountResult, Report
    from distillguard.detect.twosample import annotate

    rng = random.Random(4)
    recs = [{"org": f"org_chat_{i % 5}", "request": {"messages": [{"role": "user", "content": p}]}}
            for i, p in enumerate(rng.sample(prompts["GPTeacher"], 300) + rng.sample(prompts["alpaca_eval"], 200))]
    recs += [{"org": "org_math", "request": {"messages": [{"role": "user", "content": p}]}}
             for p in rng.sample(prompts["grade-school-math"], 80)]
    accounts = [AccountResult("org_math", 0.99, "distillation", True, None, 80, []),
                AccountResult("org_chat_0", 0.1, "benign", False, None, 100, [])]
    rep = Report(accounts, [], 0.9, 0.001, len(recs))
    assert annotate(rep, recs, permutations=100) == 1
    math_acc, chat = accounts
    assert math_acc.features["prompt_mmd_p"] < 0.01 and math_acc.features["prompt_mmd_z"] > 3
    assert any("MMD" in r for r in math_acc.reasons)
    assert "prompt_mmd_z" not in chat.features and not chat.reasons


def test_detect_cli_runs_with_the_two_sample_pass(tmp_path, prompts):
    import json

    from typer.testing import CliRunner

    from distillguard.cli.main import app

    rng = random.Random(2)
    lines = [{"id": f"r{i}", "org": "org_pop", "ts": 1000.0 + i, "request": {"messages": [{"role": "user", "content": p}]}}
             for i, p in enumerate(rng.sample(prompts["GPTeacher"], 200))]
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = CliRunner().invoke(app, ["detect", "--input", str(f), "--json", "--two-sample"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert {a["org"] for a in doc["accounts"]} == {"org_pop"}
