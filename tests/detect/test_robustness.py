"""The detector judges what harvesting is, not request parameters or wall-clock habits."""

from __future__ import annotations

import random

import pytest

from distillguard.detect.account import (
    FEATURE_NAMES,
    HOUR_PRIOR,
    PARAMETER_FEATURES,
    AccountState,
)
from distillguard.detect.engine import Detector
from distillguard.detect.evasion import REWRITES, TWICE
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


# Rewrites a harvester gets for free (detect.evasion): none may hide it. Before dup_prompt and m_answer_format were
# bound to 0 for distillation, "Question: ... Final answer:" took the flagged share of dev harvesters from 0.92 to 0.01.
@pytest.mark.parametrize("variant", ["question", "system", "cap256", "twice"])
def test_free_rewrites_of_a_harvesters_prompts_do_not_hide_it(variant):
    rng = random.Random(9)
    harvest = T.harvester("h", 400, rng)
    rewrite = REWRITES[variant]
    if rewrite is not None:
        for r in harvest:
            rewrite(r["request"])
    if variant == TWICE:
        harvest = [dict(r, id=f"{r['id']}{k}") for r in harvest for k in "ab"]
    benign = _varied_temp_steady_chatter(rng) + T.classifier_job("b", 400, rng)
    rep = Detector(rings=False).run(sorted(harvest + benign, key=lambda r: r["ts"]))
    by = {a.org: a for a in rep.accounts}
    assert by["h"].flagged, (variant, by["h"].score, rep.threshold)
    assert not by["c"].flagged and not by["b"].flagged


def test_prompts_equal_in_their_first_2000_characters_are_not_duplicates():
    head = "Read the task below carefully and answer it in full. " * 50
    a = T.record("o", 1, T.T0, [{"role": "user", "content": head + "What is a monad?"}], "x")
    b = T.record("o", 2, T.T0, [{"role": "user", "content": head + "Name three rivers."}], "x")
    assert extract(a).prompt_hash != extract(b).prompt_hash
    assert _state([a, b]).vector()["dup_prompt"] == 0.0


def test_one_sided_features_count_only_above_their_mean():
    from distillguard.detect.model import ONE_SIDED, ScoringModel

    assert {"answer_grounding", "bench"} <= ONE_SIDED
    m = ScoringModel.load()
    assert set(m.one_sided) == ONE_SIDED & set(m.features)
    k = m.features.index("answer_grounding")
    assert m.coef[1][k] <= 0.0  # may only lower the distillation score
    base = {f: mu for f, mu in zip(m.features, m.mean)}
    p = m.probabilities
    low = dict(base, answer_grounding=0.0)
    high = dict(base, answer_grounding=min(1.0, m.mean[k] + 2 * m.scale[k]))
    assert p(low)["distillation"] == p(base)["distillation"]  # below the mean: no evidence either way
    if m.coef[1][k] < 0.0:
        assert p(high)["distillation"] < p(base)["distillation"]
    again = ScoringModel.from_json(m.to_json())
    assert again.one_sided == m.one_sided and again.probabilities(high) == p(high)


def _flattened(recs):
    """Chat requests as a legacy completions client sends them: the conversation flattened into one prompt."""
    out = []
    for r in recs:
        req = dict(r["request"])
        msgs = req.pop("messages")
        req["prompt"] = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in msgs) + "\n\nAssistant:"
        out.append({**r, "endpoint": "/v1/completions", "request": req})
    return out


def test_a_chat_flattened_into_completions_prompts_is_read_as_the_chat():
    rng = random.Random(5)
    recs = []
    for i in range(2):
        recs += T.harvester(f"harvest{i}", 400, rng) + T.chatter(f"chat{i}", 300, rng)
    recs.sort(key=lambda r: r["ts"])
    det = Detector(rings=False)
    chat = {a.org: a for a in det.run(recs).accounts}
    flat = {a.org: a for a in det.run(_flattened(recs)).accounts}
    for org, a in chat.items():
        assert flat[org].flagged == a.flagged and abs(flat[org].score - a.score) < 0.01, org
    assert chat["harvest0"].flagged and not chat["chat0"].flagged


def test_transcript_parsing():
    from distillguard.detect.text import PromptView

    v = PromptView({"prompt": "System: be brief\n\nHuman: what is rust?\n\nAI: A language.\n\nHuman: who made it?\n\nAI:"})
    assert (v.turns, v.prompt, v.prev_answer, v.system, v.has_history) == (2, "who made it?", "A language.",
                                                                          "be brief", True)
    v = PromptView({"prompt": "User: hello there\nAssistant:"})
    assert (v.turns, v.prompt, v.prev_answer, v.has_history) == (1, "hello there", "", False)
    for plain in ("Question: 2+2?\nAnswer:", "Translate: user: means a person", "just a prompt"):
        v = PromptView({"prompt": plain})
        assert (v.turns, v.prompt, v.prev_answer) == (1, plain, "")
