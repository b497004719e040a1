"""The detector judges what harvesting is, not request parameters or wall-clock habits."""

from __future__ import annotations

import random

from distillguard.detect.account import (
    FEATURE_NAMES,
    HOUR_PRIOR,
    PARAMETER_FEATURES,
    AccountState,
)
from distillguard.detect.engine import Detector
from distillguard.detect.features import extract
from distillguard.detect.model import fit
from distillguard.detect.text import MARKER_BIT, marker_bits

from . import traffic as T


def _state(recs):
    st = AccountState("o")
    for r in recs:
        st.add(extract(r))
    return st


def test_no_count_of_distinct_parameter_values_is_a_feature():
    assert "temp_distinct" not in FEATURE_NAMES
    assert set(PARAMETER_FEATURES) <= set(FEATURE_NAMES)


def test_hour_of_day_is_neutral_when_the_account_spans_minutes():
    recs = T.chatter("c", 120, random.Random(1))
    for i, r in enumerate(recs):
        r["ts"] = T.T0 + i * 0.5  # a live demo: two minutes of wall time
    assert _state(recs).vector()["hour_entropy"] == HOUR_PRIOR


def test_hour_of_day_is_measured_over_days():
    recs = T.harvester("h", 300, random.Random(1), interval=1200.0)  # ~4 days around the clock
    assert _state(recs).vector()["hour_entropy"] > 0.95


def test_dataset_format_requests_are_marked():
    on = ("### instruction:\nname three birds", 'return json with fields "instruction": and "output":',
          "generate 10 question-answer pairs about rust", "write 5 new tasks, each with an input and an output")
    off = ("what is a dataset in pandas?", "can you fix the output of my script?", "hello")
    assert all(marker_bits(t) & MARKER_BIT["dataset_format"] for t in on)
    assert not any(marker_bits(t) & MARKER_BIT["dataset_format"] for t in off)


def _fixed_temp_human_harvester(rng: random.Random) -> list[dict]:
    recs = T.harvester("h", 400, rng, interval=600.0)
    for r in recs:
        r["request"]["temperature"] = 0.7
        r["ts"] += rng.expovariate(1 / 900.0)  # irregular, human-like gaps
    return sorted(recs, key=lambda r: r["ts"])


def _varied_temp_steady_chatter(rng: random.Random) -> list[dict]:
    recs = T.chatter("c", 400, rng)
    for i, r in enumerate(recs):
        r["request"]["temperature"] = rng.choice((0.0, 0.3, 0.7, 1.0, 1.2, 1.5))
        r["ts"] = T.T0 + i * 30.0  # relayed at a steady machine rate
    return recs


def test_a_fixed_temperature_human_paced_harvester_is_flagged_and_a_varied_steady_chat_is_not():
    rng = random.Random(5)
    rep = Detector(rings=False).run(_fixed_temp_human_harvester(rng) + _varied_temp_steady_chatter(rng))
    by = {a.org: a for a in rep.accounts}
    assert by["h"].flagged and not by["c"].flagged


def test_fit_can_leave_features_out():
    rng = random.Random(2)
    vecs = [_state(T.harvester("h", 60, rng)).vector() for _ in range(3)] + \
        [_state(T.chatter("c", 60, rng)).vector() for _ in range(3)]
    m = fit(vecs, ["distillation"] * 3 + ["benign"] * 3, exclude=PARAMETER_FEATURES)
    assert not set(PARAMETER_FEATURES) & set(m.features)
    assert m.probabilities(vecs[0])["distillation"] > m.probabilities(vecs[3])["distillation"]
