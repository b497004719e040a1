from distillguard.watermark import Watermarker, positions
from distillguard.watermark.detect import detect, score

WM = Watermarker("test-secret")
ORGS = [f"org_{i}" for i in range(8)]


def test_round_trip_names_the_right_org(dense_text):
    for org in ORGS[:3]:
        v = WM.detect(WM.apply(dense_text, org), ORGS)
        assert v.detected and v.org == org and v.p_value < 1e-6 and v.z > 5
        assert set(v.to_dict()) == {"detected", "p_value", "z", "tokens_scored", "org"}


def test_unwatermarked_and_other_orgs_are_not_detected(dense_text, real_answers):
    assert not WM.detect(dense_text, ORGS).detected
    assert WM.detect(dense_text, ORGS).org is None
    marked = WM.apply(dense_text, "org_x")
    assert not WM.detect(marked, ORGS).detected
    for a in real_answers:
        assert not WM.detect(a, ORGS).detected


def test_exact_binomial_p_value_with_bonferroni(dense_text):
    marked = WM.apply(dense_text, "org_0")
    pos = positions(marked, WM.lexicon)
    s = score(pos, WM.key("org_0"))
    assert s.hits == s.trials > 20 and abs(s.p_value - 0.5 ** s.trials) < 1e-15
    v = detect(pos, [k for o in ORGS for k in WM.keys(o)])
    assert abs(v.p_value - min(1.0, 0.5 ** s.trials * len(ORGS))) < 1e-12


def test_repeated_text_adds_no_evidence(dense_text):
    marked = WM.apply(dense_text, "org_1")
    once, many = WM.detect(marked, ORGS), WM.detect("\n\n".join([marked] * 10), ORGS)
    assert once.tokens_scored == many.tokens_scored and once.p_value == many.p_value


def test_key_rotation_old_versions_still_detect(dense_text):
    old = WM.apply(dense_text, "org_r")
    rotated = Watermarker("test-secret", versions={"org_r": 2})
    new = rotated.apply(dense_text, "org_r")
    assert new != old
    v_new, v_old = rotated.detect(new, ["org_r"]), rotated.detect(old, ["org_r"])
    assert v_new.detected and v_new.version == 2 and v_old.detected and v_old.version == 1
    assert not WM.detect(new, ["org_r"]).detected  # before rotation the new key is unknown
    moved = Watermarker("new-secret", old_secrets=["test-secret"])
    assert moved.detect(old, ["org_r"]).detected


def test_no_scorable_text():
    v = WM.detect("x = 1", ORGS)
    assert (v.detected, v.p_value, v.tokens_scored, v.org) == (False, 1.0, 0, None)


def test_detect_many_pools_evidence_and_dedupes_across_texts(real_answers):
    texts = [WM.apply(a, "org_2") for a in real_answers[:40]]
    singles = [WM.detect(t, ORGS) for t in texts]
    pooled = WM.detect_many(texts, ORGS)
    assert pooled.detected and pooled.org == "org_2"
    assert pooled.tokens_scored <= sum(v.tokens_scored for v in singles)
    assert WM.detect_many(texts + texts, ORGS).tokens_scored == pooled.tokens_scored
    assert not WM.detect_many(real_answers[:40], ORGS).detected
    assert not WM.detect_many(texts, [o for o in ORGS if o != "org_2"]).detected
