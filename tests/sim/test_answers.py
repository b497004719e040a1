"""Offline answers are exactly what the replay upstream (and so the gateway) would answer."""

from __future__ import annotations

import asyncio
import random

import pytest

from distillguard.config import ModelRoute
from distillguard.sim.answers import Answerer
from distillguard.upstreams.base import UpstreamCall
from distillguard.upstreams.replay import ReplayUpstream


@pytest.fixture(scope="module")
def replay(sim_cache):
    return ReplayUpstream(None, sim_cache)


def _replay(replay, endpoint, body):
    kind = "chat" if endpoint == "/v1/chat/completions" else "completions"
    c = asyncio.run(replay.complete(UpstreamCall(ModelRoute(name=body["model"]), kind, body, "req_t")))
    return c


@pytest.mark.parametrize("params", [{}, {"max_tokens": 7}, {"stop": ["\n"]}, {"temperature": 0, "max_tokens": 300}])
def test_the_fast_path_equals_the_replay_upstream(replay, sim_cache, test_corpus, params):
    ans = Answerer(None, sim_cache)
    items = random.Random(5).sample(test_corpus.pool("code", "tool", "gsm8k"), 25)
    for it in items:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": it.first_user}], **params}
        fast = ans._fast_chat(body)
        assert fast is not None  # a corpus prompt: exact match
        ref = _replay(replay, "/v1/chat/completions", body)
        assert fast.texts == tuple(ref.texts)
        assert fast.finish_reasons == tuple(ref.finish_reasons)
        assert (fast.prompt_tokens, fast.completion_tokens) == (ref.prompt_tokens, ref.completion_tokens)
    ans.close()


def test_generated_records_carry_the_replay_answers(small_run, replay):
    recs = random.Random(9).sample(small_run.records, 40)
    for r in recs:
        ref = _replay(replay, r["endpoint"], r["request"])
        text = ref.texts[0] if len(ref.texts) == 1 else "\n\n".join(ref.texts)
        assert r["response"]["text"] == text
        assert r["usage"] == {"prompt_tokens": ref.prompt_tokens, "completion_tokens": ref.completion_tokens}
