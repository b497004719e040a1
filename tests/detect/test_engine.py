from distillguard.detect.engine import Detector


def by_org(report):
    return {a.org: a for a in report.accounts}


def test_harvester_chatty_user_and_evaluator_are_told_apart(report):
    acc = by_org(report)
    for i in range(2):
        assert acc[f"harvest{i}"].flagged and acc[f"harvest{i}"].label == "distillation"
        assert acc[f"eval{i}"].label == "evaluation" and not acc[f"eval{i}"].flagged
    for i in range(6):
        assert acc[f"chat{i}"].label == "benign" and not acc[f"chat{i}"].flagged


def test_allowed_batch_classifier_with_templated_prompts_is_not_flagged(report):
    acc = by_org(report)
    assert not acc["batch0"].flagged and not acc["batch1"].flagged
    assert acc["batch0"].label == "benign"


def test_ring_of_small_accounts_is_caught_together(report):
    acc = by_org(report)
    members = [a for o, a in acc.items() if o.startswith("member")]
    assert len(members) == 12
    assert sum(a.flagged for a in members) >= 11
    rings = {a.ring for a in members if a.flagged}
    assert len(rings) == 1 and None not in rings
    ring = next(r for r in report.rings if r.id in rings)
    assert len(ring.members) >= 11 and all(m.startswith("member") for m in ring.members)
    assert any("ring members" in x for x in members[0].reasons)


def test_every_flag_carries_checkable_reasons(report):
    flagged = [a for a in report.accounts if a.flagged]
    assert flagged
    for a in flagged:
        assert any("=" in r and "towards distillation" in r for r in a.reasons)  # feature with value
        assert any("req_" in r for r in a.reasons)  # example request ids
        assert a.flagged_after is not None and a.flagged_after <= a.requests


def test_a_harvesting_key_inside_a_busy_benign_account_is_found():
    import random

    from . import traffic as T

    rng = random.Random(5)
    recs = T.mixed("busy", 2000, 0.05, rng) + T.chatter("quiet", 800, rng)
    rep = Detector(rings=False).run(sorted(recs, key=lambda r: r["ts"]))
    acc = by_org(rep)
    assert acc["busy"].flagged and acc["busy"].flagged_after is not None
    assert not acc["quiet"].flagged


def test_threshold_follows_target_fpr():
    strict = Detector(target_fpr=0.0001, rings=False).threshold
    loose = Detector(target_fpr=0.05, rings=False).threshold
    assert strict >= loose


def test_json_shape(report):
    doc = report.to_json({"auc": 1.0})
    assert set(doc) == {"accounts", "metrics"}
    a = doc["accounts"][0]
    assert {"org", "score", "label", "flagged", "ring", "requests", "reasons"} <= set(a)
    assert a["label"] in ("benign", "distillation", "evaluation")
    assert "metrics" not in report.to_json()
