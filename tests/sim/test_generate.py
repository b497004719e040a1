"""Offline generation: determinism, label/record consistency, no label leakage, scenario shapes."""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
from collections import Counter, defaultdict

from distillguard import tokens
from distillguard.detect.declared import FINE_TUNING
from distillguard.sim import identity, scenarios
from distillguard.sim.behaviours import builds_finetuning_set, side_jobs
from distillguard.sim.generate import build_tenants
from distillguard.sim.templates import CHAT_FOLLOWUPS

from .conftest import run_scenario

RECORD_KEYS = ["id", "ts", "org", "key", "project", "endpoint", "ip", "user_agent", "request", "response", "usage",
               "latency_ms"]


def test_same_scenario_and_seed_give_identical_bytes_whatever_the_workers(small_run, sim_cache, test_corpus):
    again = run_scenario("mixed-small", 7, sim_cache, workers=2, corpus=test_corpus)
    assert again.traffic == small_run.traffic
    assert again.labels_bytes == small_run.labels_bytes


def test_a_different_seed_gives_different_traffic(sim_cache, test_corpus):
    a = run_scenario("tiny", 1, sim_cache, corpus=test_corpus)
    b = run_scenario("tiny", 2, sim_cache, corpus=test_corpus)
    assert a.traffic != b.traffic
    assert {x["org"] for x in a.labels}.isdisjoint({x["org"] for x in b.labels})


def test_scenario_size_and_label_mix(small_run):
    s = small_run.summary
    assert 2000 <= s.records <= 6000 and 25 <= s.accounts <= 60
    assert set(s.accounts_by_label) == {"benign", "distillation", "evaluation"}


def test_records_follow_the_traffic_contract_and_are_sorted(small_run):
    recs = small_run.records
    assert [(r["ts"], r["id"]) for r in recs] == sorted((r["ts"], r["id"]) for r in recs)
    assert len({r["id"] for r in recs}) == len(recs)
    for r in recs[:500]:
        assert list(r) == RECORD_KEYS
        assert re.fullmatch(r"req_[0-9a-f]{25}", r["id"])
        assert int(r["id"][4:15], 16) == round(r["ts"] * 1000)  # time-ordered prefix, like the gateway's
        assert re.fullmatch(r"org_[0-9a-f]{16}", r["org"]) and re.fullmatch(r"key_[0-9a-f]{16}", r["key"])
        assert r["response"]["status"] == 200 and isinstance(r["response"]["text"], str)
        assert r["request"]["model"] and r["endpoint"] in ("/v1/chat/completions", "/v1/completions")
        assert r["usage"]["completion_tokens"] >= 0 and r["latency_ms"] > 0


def test_usage_is_counted_with_the_models_tokenizer(small_run):
    chats = [r for r in small_run.records if r["endpoint"] == "/v1/chat/completions"][:200]
    for r in chats:
        model = r["request"]["model"]
        assert r["usage"]["prompt_tokens"] == tokens.count_messages(r["request"]["messages"], model)
        if r["request"].get("n", 1) == 1:
            assert r["usage"]["completion_tokens"] == tokens.count_text(r["response"]["text"], model)


def test_every_org_has_one_label_and_rings_are_consistent(small_run):
    labels = small_run.labels
    by_org = {x["org"]: x for x in labels}
    assert len(by_org) == len(labels)
    orgs = {r["org"] for r in small_run.records}
    assert orgs == set(by_org)
    for x in labels:
        assert x["label"] in ("benign", "distillation", "evaluation")
        if x["ring"] is not None:
            assert x["label"] == "distillation" and x["kind"] == "distill-ring"
    rings = Counter(x["ring"] for x in labels if x["ring"])
    assert rings and all(n >= 5 for n in rings.values())
    # ring members send from different addresses
    ring_orgs = {x["org"] for x in labels if x["ring"]}
    ips = {r["ip"] for r in small_run.records if r["org"] in ring_orgs}
    assert len(ips) >= len(ring_orgs)


def test_visible_fields_do_not_leak_labels(small_run, test_corpus):
    for _, t in build_tenants(scenarios.get("standard"), 3, test_corpus):
        for text in [t.ident.name, t.ident.use_case, *t.ident.purposes, *t.ident.key_names, *t.ident.user_agents]:
            assert not identity.leaks_label(text), text
    for r in small_run.records:
        assert not identity.leaks_label(r["user_agent"])
        for field in ("org", "key", "project", "id"):
            assert r[field] is None or not identity.leaks_label(r[field])
    assert identity.leaks_label("Distillery Co harvest-2") and not identity.leaks_label("Tutoring Labs")


def _by_kind(run):
    kind = {x["org"]: x["kind"] for x in run.labels}
    out = defaultdict(list)
    for r in run.records:
        out[kind[r["org"]]].append(r)
    return out


def test_evaluation_tenants_use_temperature_zero_and_benchmark_prompts(small_run, test_corpus):
    evals = _by_kind(small_run)["evaluation"]
    assert len(evals) >= 50
    bench = [it.first_user[:80] for n in ("gsm8k", "humaneval", "mt_bench", "alpaca_eval", "vicuna_bench")
             for it in test_corpus.pool(n)]
    zero = sum(r["request"].get("temperature") == 0 for r in evals)
    assert zero == len(evals)

    def prompt(r):
        return r["request"].get("prompt") or "\n".join(m["content"] for m in r["request"]["messages"])

    hits = sum(any(b in prompt(r) for b in bench) for r in evals[:150])
    assert hits / min(150, len(evals)) > 0.9


def test_a_mixed_account_harvests_about_five_percent(small_run, test_corpus):
    chat_turns = {m["content"] for it in test_corpus.pool(*test_corpus.user_pools) for m in it.messages
                  if m["role"] == "user"} | set(CHAT_FOLLOWUPS)
    per_org = defaultdict(list)
    for r in _by_kind(small_run)["distill-mixed"]:
        per_org[r["org"]].append(r)
    assert per_org
    for recs in per_org.values():
        other = sum(r["request"]["messages"][-1]["content"] not in chat_turns for r in recs)
        assert 0.03 <= other / len(recs) <= 0.08, (other, len(recs))


def test_harvesters_are_steadier_and_more_templated_than_chat_users(small_run):
    kinds = _by_kind(small_run)

    def cv_gap(recs):
        by_org = defaultdict(list)
        for r in recs:
            by_org[r["org"]].append(r["ts"])
        cvs = []
        for ts in by_org.values():
            gaps = [b - a for a, b in itertools.pairwise(ts)]
            if len(gaps) > 5:
                cvs.append(statistics.pstdev(gaps) / statistics.mean(gaps))
        return statistics.median(cvs)

    assert cv_gap(kinds["distill-harvester"]) < cv_gap(kinds["benign-chat"])
    multi = [r for r in kinds["benign-chat"] if sum(m["role"] == "user" for m in r["request"]["messages"]) > 1]
    assert multi  # chat products replay real multi-turn conversations with the answers they got


def _run_unlisted(tiny: scenarios.Scenario, sim_cache, test_corpus):
    """Seed 3 of a scenario made for one test (listed only while it runs), and each org's kind."""
    scenarios.SCENARIOS[tiny.name] = tiny
    try:
        run = run_scenario(tiny.name, 3, sim_cache, corpus=test_corpus)
    finally:
        del scenarios.SCENARIOS[tiny.name]
    return run, {d["org"]: d["kind"] for d in run.labels}


def test_single_shot_products_send_no_history(sim_cache, test_corpus):
    """The products scenario: a chat bot without memory sends each user message alone; a question-answering app
    sends one question per request; a chat product with memory sends the conversation."""
    g = scenarios.Group
    tiny = scenarios.Scenario("products-tiny", 1.0, (
        g("benign-chat", "chat", "benign", 2, 60, (1, 1), spread=0.0),
        g("benign-chat-stateless", "chat", "benign", 2, 60, (1, 1), {"memory": False}, spread=0.0),
        g("benign-qa", "qa", "benign", 2, 40, (1, 1), spread=0.0),
    ))
    run, kind = _run_unlisted(tiny, sim_cache, test_corpus)
    by: dict[str, list[list[str]]] = defaultdict(list)
    for r in run.records:
        by[kind[r["org"]]].append([m["role"] for m in r["request"]["messages"]])
    assert set(by) == {"benign-chat", "benign-chat-stateless", "benign-qa"}
    for k in ("benign-chat-stateless", "benign-qa"):
        assert all(roles in (["user"], ["system", "user"]) for roles in by[k]), k
    assert any("assistant" in roles for roles in by["benign-chat"])
    assert "products" in scenarios.SCENARIOS


def test_the_followups_scenario_follows_up_the_share_of_instructions_its_groups_name(sim_cache, test_corpus):
    """Each ``distill-followup-S`` group follows about a share S of its instructions with one canned follow-up on
    the answer it got; none without."""
    base = scenarios.SCENARIOS["followups"]
    groups = tuple(dataclasses.replace(g, count=2, requests=120, spread=0.0)
                   for g in base.groups if g.tag in ("distill-followup-0.0", "distill-followup-1.0"))
    tiny = dataclasses.replace(base, name="followups-tiny", days=1.0, groups=groups)
    run, kind = _run_unlisted(tiny, sim_cache, test_corpus)
    followed: dict[str, list[bool]] = defaultdict(list)
    for r in run.records:
        msgs = r["request"]["messages"]
        followed[kind[r["org"]]].append(msgs[-1]["content"] in CHAT_FOLLOWUPS and msgs[-2]["role"] == "assistant"
                                        if len(msgs) >= 3 else False)
    assert not any(followed["distill-followup-0.0"])
    share = sum(followed["distill-followup-1.0"]) / len(followed["distill-followup-1.0"])
    assert 0.4 <= share <= 0.5  # every instruction followed up once: half the requests (fewer where one failed)


def test_tenants_that_build_fine_tuning_sets_declare_it_and_some_distillers_claim_it(small_run, test_corpus):
    """Declared purposes follow what a tenant does: every fine-tuning customer (and every product account with a
    fine-tuning side job) declares ``fine-tuning``; a share of distillers claims it as cover; the labels file
    carries what was declared."""
    tenants = build_tenants(scenarios.get("standard"), 3, test_corpus)
    builders = [t for _, t in tenants if builds_finetuning_set(t)]
    assert {t.spec.kind for t in builders} == {"finetune", "multi"}
    assert all(FINE_TUNING in t.ident.purposes for t in builders)
    assert any(t.spec.kind == "multi" and "finetune" not in side_jobs(t) for _, t in tenants)
    distillers = [t for _, t in tenants if t.spec.label == "distillation"]
    claim = sum(FINE_TUNING in t.ident.purposes for t in distillers) / len(distillers)
    assert 0.2 <= claim <= 0.6, claim  # cover stories (30%) beside purposes drawn at random
    others = [t for _, t in tenants if t.spec.label != "distillation" and not builds_finetuning_set(t)]
    assert sum(FINE_TUNING in t.ident.purposes for t in others) / len(others) < 0.3
    again = {t.ident.org: t.ident.purposes for _, t in build_tenants(scenarios.get("mixed-small"), 7, test_corpus)}
    assert small_run.labels and all(d["purposes"] == again[d["org"]] for d in small_run.labels)
