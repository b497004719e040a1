"""A follow-up counts only when it continues an answer the account was served (``detect.continuity``)."""

from __future__ import annotations

import random

from distillguard.detect import continuity
from distillguard.detect.continuity import CREDITS, ServedAnswers
from distillguard.detect.engine import Detector
from distillguard.detect.evasion import REWRITES
from distillguard.detect.features import answer_key, extract
from distillguard.detect.online import OnlineDetector

from . import traffic as T


def test_answer_key_survives_rewrapping_and_markdown_but_not_other_text():
    served = "**Paris** is the capital of France.\n\nIt has been since the 10th century. " * 3
    assert answer_key(served) == answer_key(served.replace("**", "").replace("\n\n", " "))
    assert answer_key(served) == answer_key("  " + served.upper())
    assert answer_key(served) != answer_key("Lyon is a city in France. " * 3)
    assert answer_key("北京是中国的首都。") != answer_key("上海是中国最大的城市。")  # non-ASCII text keeps its bytes
    assert answer_key("") == 0 and answer_key(None) == 0 and answer_key("***") == 0


def test_a_served_answer_backs_a_bounded_number_of_follow_ups(monkeypatch):
    s = ServedAnswers()
    assert not s.take(123) and not s.take(0)
    s.served(123)
    assert [s.take(123) for _ in range(CREDITS + 1)] == [True] * CREDITS + [False]
    monkeypatch.setattr(continuity, "MAX_KEYS", 3)
    for k in (1, 2, 3, 4):
        s.served(k)
    assert len(s) == 3 and not s.take(1) and s.take(4)  # the oldest is forgotten first


def _follow_up(org, i, ts, prev_answer, prompt="Thanks! Can you explain that a bit more?"):
    msgs = [{"role": "user", "content": "Tell me about Paris."}, {"role": "assistant", "content": prev_answer},
            {"role": "user", "content": prompt}]
    return T.record(org, i, ts, msgs, "Sure. Paris is ...")


def test_only_follow_ups_of_served_answers_count_in_batch_and_online():
    answer = "Paris is the capital of France, on the Seine, with about two million inhabitants."
    first = T.record("o", 0, T.T0, [{"role": "user", "content": "Tell me about Paris."}], answer)
    real = _follow_up("o", 1, T.T0 + 30, answer)
    made_up = _follow_up("o", 2, T.T0 + 60, "Paris is a city that I can tell you about in detail, as you asked.")
    assert extract(real).follow_up and extract(made_up).follow_up  # both build on "their" previous answer
    elsewhere = _follow_up("x", 0, T.T0 + 40, answer)  # served to "o", not to "x"
    recs = [first, real, elsewhere, made_up]
    orgs, _ = {}, {}
    Detector(rings=False).consume(((r["org"], extract(r)) for r in recs), orgs, {})
    assert orgs["o"].state.follow == 1 and orgs["x"].state.follow == 0
    online = OnlineDetector()
    for r in recs:
        online.observe(r)
    assert online._accounts["o"].current.state.follow == 1 and online._accounts["x"].current.state.follow == 0


def test_replaying_one_served_answer_before_every_prompt_earns_at_most_its_credits():
    answer = "Paris is the capital of France, on the Seine, with about two million inhabitants."
    recs = [T.record("o", 0, T.T0, [{"role": "user", "content": "Tell me about Paris."}], answer)]
    recs += [_follow_up("o", i, T.T0 + 10 * i, answer) for i in range(1, 20)]
    orgs: dict = {}
    Detector(rings=False).consume(((r["org"], extract(r)) for r in recs), orgs, {})
    assert orgs["o"].state.follow == CREDITS


def test_a_made_up_history_before_every_prompt_does_not_hide_a_harvester():
    rng = random.Random(9)
    harvest = T.harvester("h", 400, rng)
    for r in harvest:
        REWRITES["history"](r["request"])
    assert sum(extract(r).follow_up for r in harvest) > 300  # the rewrite does make them look like follow-ups
    benign = T.chatter("c", 400, rng) + T.classifier_job("b", 400, rng)
    rep = Detector(rings=False).run(sorted(harvest + benign, key=lambda r: r["ts"]))
    by = {a.org: a for a in rep.accounts}
    assert by["h"].flagged, (by["h"].score, rep.threshold)
    assert not by["c"].flagged and not by["b"].flagged
    assert by["c"].features["follow_up"] > 0.1  # the chatter's real follow-ups still count
