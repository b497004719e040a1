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
