"""A harvesting job hidden in a busy benign account is scored as a sub-stream of its own; candidate rings are
scored as one pseudo-account against a threshold calibrated on clusters of benign accounts."""

from __future__ import annotations

import random

from distillguard.detect.account import AccountState
from distillguard.detect.engine import Detector, Tracked, templated
from distillguard.detect.features import extract
from distillguard.detect.model import NOT_FOR_DISTILLATION, ScoringModel, fit
from distillguard.detect.rings import topic_rings

from . import traffic as T


def _by_org(rep):
    return {a.org: a for a in rep.accounts}


def _script_inside(org: str, n: int, share: float, rng: random.Random) -> list[dict]:
    """A chat product plus a harvesting script on the *same* key: only the client program differs."""
    chat = T.chatter(org, int(n * (1 - share)), rng)
    span = max(r["ts"] for r in chat) - min(r["ts"] for r in chat)
    k = int(n * share)  # spread over the product's whole time span, so it is ~5% of every window too
    script = T.harvester(org, k, rng, key="key_1", interval=span / k)
    for i, r in enumerate(script):
        r["id"] = f"req_{org}_s{i:05d}"
        r["ts"] += 3600.0
    return sorted(chat + script, key=lambda r: r["ts"])


def test_client_fingerprint_groups_one_program_and_separates_another():
    rng = random.Random(3)
    chat = [extract(r) for r in T.chatter("a", 20, rng)]
    script = [extract(r) for r in T.harvester("a", 20, rng, key="key_1")]
    assert len({f.client for f in chat}) == 1 and len({f.client for f in script}) == 1
    assert chat[0].client != script[0].client and chat[0].route != script[0].route
    # a product's user picking another temperature is the same program
    r = T.chatter("a", 1, rng)[0]
    r2 = {**r, "request": {**r["request"], "temperature": 1.3}}
    r["request"]["temperature"] = 0.2
    assert extract(r).client == extract(r2).client


def test_a_five_percent_script_behind_the_products_key_is_flagged_as_a_sub_stream():
    # 100 script requests: with thresholds set on held-out benign traffic, 60 of them (5% of 1,200) score 0.988
    # against the program threshold 0.990; from 100 on the stream crosses it
    rng = random.Random(11)
    recs = _script_inside("busy", 2000, 0.05, rng) + T.chatter("quiet", 1200, rng)
    rep = Detector(rings=False).run(sorted(recs, key=lambda r: r["ts"]))
    acc = _by_org(rep)
    assert not acc["quiet"].flagged
    busy = acc["busy"]
    assert busy.flagged and busy.flagged_after is not None and busy.flagged_after <= busy.requests
    assert any("client program" in x or "route" in x or "templated" in x for x in busy.reasons)
    # the whole account alone does not look like harvesting: the sub-stream is what found it
    alone = Detector(rings=False).model.probabilities(busy.features)["distillation"]
    assert alone < Detector(rings=False).threshold


def test_templated_stream_takes_new_single_shot_prompts_in_a_reused_scaffold():
    rng = random.Random(4)
    acc = AccountState("o")
    seen = []
    for r in T.harvester("o", 6, rng, template="Explain this to a child, with an example:\n{x}"):
        f = extract(r)
        repeat = f.prompt_hash in acc.prompts
        acc.add(f)
        seen.append(templated(acc, f, repeat))
    assert seen == [False, False, True, True, True, True]
    again = extract(r)  # the same prompt once more is a repeat, not a new templated prompt
    acc.add(again)
    assert not templated(acc, again, True)


def test_more_sub_streams_raise_the_calibrated_threshold_not_the_benign_flags():
    # benign accounts with a second, machine-like program (an allowed classifier job) are not flagged
    rng = random.Random(8)
    recs = []
    for i in range(3):
        org = f"multi{i}"
        job = T.classifier_job(org, 60, rng)
        for r in job:
            r["key"] = "key_1"
        recs += T.chatter(org, 600, rng) + job
    rep = Detector(rings=False).run(sorted(recs, key=lambda r: r["ts"]))
    assert not any(a.flagged for a in rep.accounts)


def test_topic_profile_clusters_harvesters_without_a_shared_scaffold():
    rng = random.Random(6)
    states = {}
    templates = [f"Task {k}: {{x}}\n\nAnswer in style number {k}." for k in range(6)]
    for k, tpl in enumerate(templates):
        states[f"h{k}"] = AccountState(f"h{k}").extend(extract(r) for r in T.harvester(f"h{k}", 80, rng, template=tpl))
    for k in range(8):
        states[f"c{k}"] = AccountState(f"c{k}").extend(extract(r) for r in T.chatter(f"c{k}", 80, rng))
    for k in range(3):
        states[f"b{k}"] = AccountState(f"b{k}").extend(extract(r) for r in T.classifier_job(f"b{k}", 80, rng))
    rings = topic_rings(list(states.values()))
    harvest_rings = [r for r in rings if any(m.startswith("h") for m in r.members)]
    assert harvest_rings and all(r.basis == "topic profile" for r in harvest_rings)
    assert not any(m.startswith("c") for r in harvest_rings for m in r.members)
    assert sum(len(r.members) for r in harvest_rings) >= 5


def test_ring_threshold_is_between_benign_clusters_and_the_account_threshold():
    m = ScoringModel.load()
    acct = m.threshold()
    assert m.benign_ring_scores, "the shipped model is calibrated on clusters of benign dev accounts"
    assert max(m.benign_ring_scores) <= m.ring_threshold() <= acct
    m.benign_ring_scores = []
    assert m.ring_threshold() == acct


def test_shallow_traits_carry_no_distillation_weight():
    rng = random.Random(2)
    vecs = [AccountState("h").extend(extract(r) for r in T.harvester("h", 60, rng)).vector() for _ in range(3)]
    vecs += [AccountState("c").extend(extract(r) for r in T.chatter("c", 60, rng)).vector() for _ in range(3)]
    m = fit(vecs, ["distillation"] * 3 + ["benign"] * 3)
    d = m.coef[1]
    for name in NOT_FOR_DISTILLATION:
        assert d[m.features.index(name)] == 0.0
    shipped = ScoringModel.load()
    for name in NOT_FOR_DISTILLATION:
        assert shipped.coef[1][shipped.features.index(name)] == 0.0


def test_tracked_sub_streams_are_bounded_per_account():
    from distillguard.detect.engine import MAX_SUBSTREAMS

    rng = random.Random(1)
    recs = T.chatter("o", 200, rng)
    for i, r in enumerate(recs):
        r["user_agent"] = f"client/{i}"  # every request a new program
    det = Detector(rings=False)
    orgs: dict[str, Tracked] = {}
    keys: dict[tuple[str, str], Tracked] = {}
    det.consume((("o", extract(r)) for r in recs), orgs, keys)
    assert sum(1 for (_, sid) in keys if sid[:2] in ("c:", "r:")) <= MAX_SUBSTREAMS


def test_each_stream_family_has_its_own_threshold_on_one_score_scale():
    from distillguard.detect.model import FAMILIES, family, rescale

    m = ScoringModel.load()
    assert set(m.benign_family_scores) == set(FAMILIES)
    thr = {f: m.threshold(family=f) for f in FAMILIES}
    for f in FAMILIES:  # every benign dev account stays below each family's threshold
        assert max(m.benign_family_scores[f]) < thr[f]
    assert family("k:key_1") == "account" and family("c:12") == "program" and family("t") == "templated"
    ref = thr["account"]
    for p in (0.2, thr["templated"] - 1e-6, thr["templated"], 0.999):
        assert (rescale(p, thr["templated"], ref) >= ref) == (p >= thr["templated"])
    # without per-family calibration every family shares the legacy threshold
    m.benign_family_scores = {}
    assert m.threshold(family="templated") == m.threshold(family="account")
