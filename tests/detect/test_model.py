"""The scorer: small windows are weak evidence (``evidence_k``), and the model file keeps what scoring needs."""

from __future__ import annotations

import random

from distillguard.detect.account import FEATURE_NAMES
from distillguard.detect.model import ScoringModel, fit


def _vectors(rng: random.Random, n_each: int = 200) -> tuple[list[dict[str, float]], list[str]]:
    """Benign vectors with few markers and narrow topics, harvest vectors with many and broad, at sizes 10–1000."""
    vecs, labels = [], []
    for i in range(2 * n_each):
        harvest = i % 2 == 0
        v = dict.fromkeys(FEATURE_NAMES, 0.0)
        v["any_marker"] = rng.uniform(0.5, 1.0) if harvest else rng.uniform(0.0, 0.5)
        v["topic_spread"] = rng.uniform(0.6, 1.0) if harvest else rng.uniform(0.2, 0.7)
        v["requests"] = float(rng.choice((10, 50, 200, 1000)))
        vecs.append(v)
        labels.append("distillation" if harvest else "benign")
    return vecs, labels


def _harvest_like(n: float) -> dict[str, float]:
    v = dict.fromkeys(FEATURE_NAMES, 0.0)
    v.update(any_marker=0.95, topic_spread=0.95, requests=n)
    return v


def test_small_windows_score_nearer_the_benign_centre():
    vecs, labels = _vectors(random.Random(3))
    m = fit(vecs, labels, evidence_k=30.0)
    p = {n: m.probabilities(_harvest_like(n))["distillation"] for n in (10, 50, 1000)}
    assert p[10] < p[50] < p[1000]
    assert p[1000] > 0.9
    # without a size the vector is taken at face value, as it is by a model without shrinkage
    face = _harvest_like(1000)
    del face["requests"]
    assert m.probabilities(face)["distillation"] > p[1000]


def test_without_evidence_k_the_window_size_changes_nothing():
    vecs, labels = _vectors(random.Random(3))
    m = fit(vecs, labels)
    assert m.evidence_k == 0.0 and m.benign_center == []
    assert m.probabilities(_harvest_like(10)) == m.probabilities(_harvest_like(1000))


def test_model_file_round_trip_keeps_the_shrinkage(tmp_path):
    vecs, labels = _vectors(random.Random(4))
    m = fit(vecs, labels, evidence_k=20.0)
    m.save(tmp_path / "m.json")
    back = ScoringModel.load(tmp_path / "m.json")
    assert back.evidence_k == 20.0 and back.benign_center == m.benign_center
    v = _harvest_like(15)
    assert back.probabilities(v) == m.probabilities(v)


def test_looking_like_a_benchmark_run_never_lowers_the_distillation_score():
    """Temperature 0 is evaluation evidence, and the distillation weights may not use it. It must then leave
    P(distillation) exactly as it was: a harvester that sends temperature 0 (or dresses as an evaluator in any way
    the evaluation model reads) keeps its score, while the same trait still raises P(evaluation) of the rest."""
    rng = random.Random(5)
    vecs, labels = _vectors(rng)
    for _ in range(150):
        v = dict.fromkeys(FEATURE_NAMES, 0.0)
        v.update(temp0=rng.uniform(0.8, 1.0), bench=rng.uniform(0.5, 1.0), topic_spread=rng.uniform(0.3, 0.8),
                 requests=200.0)
        vecs.append(v)
        labels.append("evaluation")
    m = fit(vecs, labels)
    k = m.features.index("temp0")
    assert m.coef[1][k] == 0.0 and m.coef[2][k] > 0.5  # (distillation, evaluation rows)
    for n in (50, 1000):
        v = _harvest_like(n)
        p, p0 = m.probabilities(v), m.probabilities(dict(v, temp0=1.0))
        assert p0["distillation"] == p["distillation"] > 0.5
        calm = dict(v, any_marker=0.1, topic_spread=0.4)
        assert m.probabilities(dict(calm, temp0=1.0))["evaluation"] > m.probabilities(calm)["evaluation"]
        assert abs(sum(p0.values()) - 1.0) < 1e-12
