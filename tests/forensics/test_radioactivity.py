import random

from distillguard.forensics.radioactivity import NgramLM, probe_texts, sample_model
from distillguard.watermark import Watermarker


def test_ngram_lm_roundtrip(tmp_path, answers):
    lm = NgramLM().train(a for _, a in answers[:50])
    path = tmp_path / "m.json.gz"
    lm.save(path)
    again = NgramLM.load(path)
    assert sample_model(lm, 3, seed=1) == sample_model(again, 3, seed=1)
    assert all(len(t.split()) > 10 for t in sample_model(again, 3, seed=1))


def test_probe_names_the_org_whose_marked_text_the_model_copies(answers):
    wm = Watermarker("s")
    marked = [wm.apply(a, "org_a") for _, a in answers[:300]]
    res = probe_texts(marked, wm, ["org_a", "org_b", "org_c"])
    assert res["detected"] and res["org"] == "org_a"
    assert [r["org"] for r in res["orgs"]][0] == "org_a" and res["orgs"][0]["p_value"] < 1e-6
    assert set(res) == {"detected", "org", "tokens_scored", "orgs"}
    clean = probe_texts([a for _, a in answers[:300]], wm, ["org_a", "org_b", "org_c"])
    assert not clean["detected"] and clean["org"] is None and clean["orgs"][0]["p_value"] > 1e-3


def test_repeated_generations_add_no_evidence(answers):
    wm = Watermarker("s")
    one = wm.apply(answers[0][1], "org_a")
    assert probe_texts([one] * 50, wm, ["org_a"])["tokens_scored"] == probe_texts([one], wm, ["org_a"])["tokens_scored"]
    rng = random.Random(0)
    assert rng  # deterministic helpers only


def test_lm_keeps_line_breaks_so_code_lines_do_not_hide_later_prose():
    from distillguard.forensics.radioactivity import lm_detokenize, lm_tokens

    text = "Intro line.\n\ndef f():\n  return 1\nHowever, it is not done."
    toks = lm_tokens(text)
    assert "\n\n" in toks and "\n" in toks
    assert lm_detokenize(toks) == "Intro line.\n\ndef f():\nreturn 1\nHowever, it is not done."


def test_line_protector_scores_prose_after_a_code_line():
    from distillguard.forensics.radioactivity import variant_counts

    wm = Watermarker("s")
    prose = "It is not clear. We do not know, however the plan is not final."
    after_code = variant_counts(["def f():\n" + prose], wm)
    assert {k[1] for k in after_code} == {k[1] for k in variant_counts([prose], wm)} and len(after_code) >= 3


def test_white_box_reference_probe_finds_the_learned_shift(answers):
    from distillguard.forensics.radioactivity import probe_models

    wm = Watermarker("s")
    texts = [a for _, a in answers]
    clean, extra = texts[:300], texts[300:400]
    reference = NgramLM().train(clean)
    marked = NgramLM().train(clean + [wm.apply(a, "org_a") for a in extra])
    res = probe_models(marked, reference, wm, ["org_a", "org_b", "org_c"])
    assert res["detected"] and res["org"] == "org_a" and res["orgs"][0]["p_value"] < 1e-6
    unmarked = NgramLM().train(clean + extra)
    null = probe_models(unmarked, reference, wm, ["org_a", "org_b", "org_c"])
    assert not null["detected"] and null["orgs"][0]["p_value"] > 1e-3
    # identical models: every shift is zero, nothing is scored
    assert probe_models(reference, reference, wm, ["org_a"])["tokens_scored"] == 0


def test_reference_sign_test_is_fair_for_four_variant_sets():
    from distillguard.forensics.radioactivity import _reference_test
    from distillguard.watermark.keys import keys_for

    # one variant up, the rest flat: each bit's halves differ, so every key scores both bits, half of them hits
    shifts = [(f"c{i}", 29, [0.3, -0.1, -0.1, -0.1]) for i in range(400)]
    _, z, trials = _reference_test(shifts, keys_for("s", "org_a")[0])
    assert trials == 800 and abs(z) < 4


def test_evaluation_rows_find_the_marked_share_and_keep_clean_models_quiet(answers):
    """Small version of `probe-eval`: the same-corpus reference test sees 10% marked text; clean models stay quiet."""
    from distillguard.forensics.radioactivity import evaluate

    texts = [a for _, a in answers]
    res = evaluate(texts, rates=(0.0, 0.10), clean_models=3, train_words=50_000, clean_words=20_000, samples=40)
    by_rate = {r["rate"]: r for r in res["rates"]}
    assert by_rate[0.10]["p_reference"] < 1e-6 and by_rate[0.10]["org_reference"] == "org_suspect"
    assert not by_rate[0.0]["org_reference"] and by_rate[0.0]["watermarked_words"] == 0
    assert res["clean_models"] == 3 and set(res["clean_below_0.01_by_test"]) == {"samples", "reference", "reference_indep"}
    assert all(p > 1e-6 for p in res["clean_min_p_by_test"].values())


def test_null_key_sets_estimate_the_false_positive_rate(answers):
    """Other random key sets are more draws of the null: few corrected p < 0.01, and the eval keys' rows unchanged."""
    from distillguard.forensics.radioactivity import evaluate

    texts = [a for _, a in answers]
    kw = dict(rates=(), clean_models=2, clean_words=20_000, samples=40)
    plain = evaluate(texts, **kw)
    res = evaluate(texts, null_groups=30, **kw)
    assert res["null_trials"] == 60 and set(res["null_below_0.01_by_test"]) == {"samples", "reference", "reference_indep"}
    assert all(v <= 3 for v in res["null_below_0.01_by_test"].values())  # level 1%: 0.6 expected of 60
    assert res["clean_min_p_by_test"] == plain["clean_min_p_by_test"]
