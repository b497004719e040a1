"""The replay upstream: OpenAI response shapes, max_tokens / stop / n, streaming, legacy completions,
tool calls, simulated latency and embeddings."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest

from distillguard import tokens
from distillguard.config import ModelRoute
from distillguard.errors import InvalidRequest
from distillguard.upstreams.replay import ReplayUpstream, vector_from_base64

from .conftest import NOW, first_answer, make_call
from .test_replay_index import unique_prompts


@pytest.fixture
def record(compact_records):
    """A real AlpacaEval record (gpt-4o-mini's recorded answer) with a long answer."""
    for rec in unique_prompts(compact_records, "alpaca_eval", limit=50):
        _, answer = first_answer(rec)
        if tokens.count_text(answer, "gpt-4o-mini") > 150 and "\n" in answer:
            return rec
    raise AssertionError("no long AlpacaEval answer")


def chat(rec, **extra):
    ctx, _ = first_answer(rec)
    return {"model": "gpt-4o-mini", "messages": ctx, **extra}


async def test_chat_completion_has_openai_shape_and_recorded_answer(replay, record):
    body = chat(record, model="gpt-4o")
    comp = await replay.complete(make_call("chat", body, route=ModelRoute(name="gpt-4o"), request_id="req_a"))
    _, answer = first_answer(record)
    b = comp.body
    assert set(b) == {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
    assert b["id"].startswith("chatcmpl-") and len(b["id"]) == len("chatcmpl-") + 29
    assert (b["object"], b["created"], b["model"]) == ("chat.completion", int(NOW), "gpt-4o")
    assert b["system_fingerprint"].startswith("fp_")
    assert b["choices"] == [{"index": 0, "message": {"role": "assistant", "content": answer, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}]
    u = b["usage"]
    assert u["prompt_tokens"] == tokens.count_messages(body["messages"], "gpt-4o")
    assert u["completion_tokens"] == tokens.count_text(answer, "gpt-4o")
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert (comp.texts, comp.finish_reasons) == ([answer], ["stop"])
    assert (comp.prompt_tokens, comp.completion_tokens) == (u["prompt_tokens"], u["completion_tokens"])
    assert comp.extra["replay"][0] == {"record": record.id, "match": "exact", "score": 1.0}


async def test_answer_is_deterministic_and_id_follows_request(replay, record):
    a = await replay.complete(make_call("chat", chat(record), request_id="req_1"))
    b = await replay.complete(make_call("chat", chat(record), request_id="req_1"))
    c = await replay.complete(make_call("chat", chat(record), request_id="req_2"))
    assert a.body == b.body
    assert c.body["id"] != a.body["id"] and c.body["choices"] == a.body["choices"]


async def test_tokens_use_the_route_encoding(replay, record):
    route = ModelRoute(name="house-model", encoding="cl100k_base")
    comp = await replay.complete(make_call("chat", chat(record, model="house-model"), route=route))
    assert comp.body["model"] == "house-model"
    assert comp.completion_tokens == len(tokens.get_encoding("cl100k_base").encode(comp.texts[0]))
    assert comp.completion_tokens != tokens.count_text(comp.texts[0], "gpt-4o")


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("limit", [1, 7, 100])
async def test_max_tokens_truncates_to_exactly_that_many_tokens(replay, record, param, limit):
    _, answer = first_answer(record)
    comp = await replay.complete(make_call("chat", chat(record, **{param: limit})))
    text = comp.texts[0]
    assert tokens.count_text(text, "gpt-4o-mini") == limit == comp.completion_tokens
    assert answer.startswith(text) and len(text) < len(answer)
    assert comp.finish_reasons == ["length"] == [comp.body["choices"][0]["finish_reason"]]


async def test_max_tokens_above_the_answer_length_is_a_normal_stop(replay, record):
    _, answer = first_answer(record)
    comp = await replay.complete(make_call("chat", chat(record, max_tokens=100_000)))
    assert comp.texts == [answer] and comp.finish_reasons == ["stop"]


async def test_stop_cuts_before_the_earliest_stop_string(replay, record):
    _, answer = first_answer(record)
    first_nl = answer.index("\n")
    later = answer[first_nl + 1:].strip()[:8]
    comp = await replay.complete(make_call("chat", chat(record, stop=[later, "\n"])))
    assert comp.texts == [answer[:first_nl]] and comp.finish_reasons == ["stop"]
    assert comp.completion_tokens == tokens.count_text(answer[:first_nl], "gpt-4o-mini")
    comp = await replay.complete(make_call("chat", chat(record, stop="\n")))
    assert comp.texts == [answer[:first_nl]]
    # a stop string past the token budget: the budget ends the answer first
    comp = await replay.complete(make_call("chat", chat(record, stop=answer[-10:], max_tokens=5)))
    assert comp.finish_reasons == ["length"] and comp.completion_tokens == 5


async def test_n_gives_distinct_deterministic_choices(replay, record):
    _, answer = first_answer(record)
    comp = await replay.complete(make_call("chat", chat(record, n=3)))
    choices = comp.body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    texts = [c["message"]["content"] for c in choices]
    assert texts[0] == answer and len(set(texts)) == 3
    assert comp.completion_tokens == sum(tokens.count_text(t, "gpt-4o-mini") for t in texts)
    again = await replay.complete(make_call("chat", chat(record, n=3)))
    assert again.body == comp.body


async def collect(agen):
    return [c async for c in agen]


@pytest.mark.parametrize("extra", [{}, {"max_tokens": 33}, {"n": 2}, {"stop": "\n\n"}])
async def test_stream_concatenates_to_the_non_streaming_answer(replay, record, extra):
    body = chat(record, **extra)
    comp = await replay.complete(make_call("chat", body, request_id="req_s"))
    chunks = await collect(replay.stream(make_call("chat", {**body, "stream": True}, request_id="req_s")))
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["id"] for c in chunks} == {comp.body["id"]}
    assert {c["model"] for c in chunks} == {"gpt-4o-mini"}
    assert all("usage" not in c for c in chunks[:-1])  # client did not ask for include_usage
    n = len(comp.texts)
    firsts = chunks[:n]
    assert [f["choices"][0]["delta"] for f in firsts] == [{"role": "assistant", "content": "", "refusal": None}] * n
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    enc = tokens.encoding_for("gpt-4o-mini")
    for c in chunks[n:-1]:
        (ch,) = c["choices"]
        if ch["finish_reason"]:
            assert ch["delta"] == {}
            finish[ch["index"]] = ch["finish_reason"]
        else:
            piece = ch["delta"]["content"]
            assert piece and set(ch["delta"]) == {"content"}
            assert 1 <= len(enc.encode(piece)) <= 4
            texts[ch["index"]] = texts.get(ch["index"], "") + piece
    assert [texts[i] for i in range(n)] == comp.texts
    assert [finish[i] for i in range(n)] == comp.finish_reasons
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"] == comp.body["usage"]


async def test_stream_marks_usage_null_when_client_asks_for_usage(replay, record):
    chunks = await collect(replay.stream(make_call("chat", chat(record, stream_options={"include_usage": True}))))
    assert all(c["usage"] is None for c in chunks[:-1]) and chunks[-1]["usage"]["completion_tokens"] > 0


async def test_stream_chunks_are_token_sized(replay, record):
    chunks = await collect(replay.stream(make_call("chat", chat(record))))
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    pieces = [p for p in pieces if p]
    usage = chunks[-1]["usage"]["completion_tokens"]
    assert usage / 4 <= len(pieces) <= usage  # 1–4 tokens each
    assert len({len(tokens.encoding_for("gpt-4o-mini").encode(p)) for p in pieces}) >= 3  # varied sizes


async def test_simulated_latency(replay_cache, fake_sleep, record):
    up = ReplayUpstream(cache_dir=replay_cache, sleep=fake_sleep, clock=lambda: NOW)
    route = ModelRoute(name="gpt-4o-mini", latency_ms=250, chunk_delay_ms=20)
    chunks = await collect(up.stream(make_call("chat", chat(record), route=route)))
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert fake_sleep.calls[0] == pytest.approx(0.25)
    assert fake_sleep.calls[1:] == [pytest.approx(0.02)] * (len(content) - 1)
    fake_sleep.calls.clear()
    await up.complete(make_call("chat", chat(record), route=route))
    assert fake_sleep.calls == [pytest.approx(0.25 + 0.02 * (len(content) - 1))]
    fake_sleep.calls.clear()
    await up.complete(make_call("chat", chat(record)))  # no latency configured: no sleeping
    assert fake_sleep.calls == []


# ---- legacy completions ------------------------------------------------------------------------------------
INSTRUCT = ModelRoute(name="gpt-3.5-turbo-instruct")


def legacy(prompt, **extra):
    return make_call("completions", {"model": "gpt-3.5-turbo-instruct", "prompt": prompt, **extra}, route=INSTRUCT)


async def test_legacy_completion_shape_and_default_max_tokens(replay, compact_records):
    rec = unique_prompts(compact_records, "grade-school-math")[0]
    ctx, answer = first_answer(rec)
    comp = await replay.complete(legacy(ctx[0]["content"]))
    b = comp.body
    assert set(b) == {"id", "object", "created", "model", "choices", "usage"}
    assert b["id"].startswith("cmpl-") and b["object"] == "text_completion" and b["model"] == "gpt-3.5-turbo-instruct"
    (ch,) = b["choices"]
    assert set(ch) == {"text", "index", "logprobs", "finish_reason"}
    assert ch["finish_reason"] == "length" and tokens.count_text(ch["text"], "gpt-3.5-turbo-instruct") == 16
    assert answer.startswith(ch["text"])
    assert b["usage"] == {"prompt_tokens": tokens.count_prompt(ctx[0]["content"], "gpt-3.5-turbo-instruct"),
                          "completion_tokens": 16, "total_tokens": b["usage"]["prompt_tokens"] + 16}
    full = await replay.complete(legacy(ctx[0]["content"], max_tokens=2000))
    assert full.texts == [answer] and full.finish_reasons == ["stop"]


async def test_legacy_prompt_forms_echo_and_n(replay, compact_records):
    recs = unique_prompts(compact_records, "grade-school-math", limit=2)
    prompts = [first_answer(r)[0][0]["content"] for r in recs]
    answers = [first_answer(r)[1] for r in recs]
    enc = tokens.encoding_for("gpt-3.5-turbo-instruct")
    as_ids = await replay.complete(legacy(enc.encode(prompts[0]), max_tokens=500))
    assert as_ids.texts == [answers[0]]
    assert as_ids.prompt_tokens == len(enc.encode(prompts[0]))
    many = await replay.complete(legacy([prompts[0], enc.encode(prompts[1])], max_tokens=500, n=2))
    assert [c["index"] for c in many.body["choices"]] == [0, 1, 2, 3]
    assert many.texts[0] == answers[0] and many.texts[2] == answers[1]
    assert many.texts[1] != answers[0] and many.texts[3] != answers[1]
    echo = await replay.complete(legacy(prompts[0], max_tokens=5, echo=True))
    assert echo.texts[0].startswith(prompts[0]) and answers[0].startswith(echo.texts[0][len(prompts[0]):])
    assert echo.completion_tokens == 5


async def test_legacy_code_prompt_gets_the_continuation(replay, compact_records):
    rec = next(r for r in compact_records if "human-eval" in r.source)
    ctx, answer = first_answer(rec)
    assert answer.startswith(ctx[0]["content"])  # recorded as prompt + solution
    comp = await replay.complete(legacy(ctx[0]["content"], max_tokens=1000))
    assert comp.texts == [answer[len(ctx[0]["content"]):]]


async def test_legacy_stream(replay, compact_records):
    prompt = first_answer(unique_prompts(compact_records, "grade-school-math")[0])[0][0]["content"]
    comp = await replay.complete(legacy(prompt, max_tokens=40))
    chunks = await collect(replay.stream(legacy(prompt, max_tokens=40, stream=True)))
    assert {c["object"] for c in chunks} == {"text_completion"}
    text = "".join(c["choices"][0]["text"] for c in chunks[:-1])
    assert text == comp.texts[0]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == comp.body["usage"]


# ---- tool calls ----------------------------------------------------------------------------------------------
def _glaive_call(compact_records):
    import json

    for rec in compact_records:
        if "glaive" not in rec.source:
            continue
        for i, m in enumerate(rec.messages):
            if m["role"] == "assistant" and m["content"].startswith("{\"name\""):
                return [dict(x) for x in rec.messages[:i]], json.loads(m["content"])
    raise AssertionError("no glaive tool call")


async def test_recorded_function_call_becomes_a_tool_call_when_tools_are_offered(replay, compact_records):
    ctx, call = _glaive_call(compact_records)
    tools = [{"type": "function", "function": {"name": call["name"], "parameters": {"type": "object"}}}]
    comp = await replay.complete(make_call("chat", {"model": "gpt-4o-mini", "messages": ctx, "tools": tools}))
    (ch,) = comp.body["choices"]
    assert ch["finish_reason"] == "tool_calls" and ch["message"]["content"] is None
    (tc,) = ch["message"]["tool_calls"]
    assert tc["type"] == "function" and tc["id"].startswith("call_") and tc["function"]["name"] == call["name"]
    import json

    assert json.loads(tc["function"]["arguments"]) == call["arguments"]
    chunks = await collect(replay.stream(make_call("chat", {"model": "gpt-4o-mini", "messages": ctx, "tools": tools})))
    first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert (first["id"], first["function"]["name"]) == (tc["id"], call["name"])
    args = "".join(c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                   for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
    assert args == tc["function"]["arguments"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    plain = await replay.complete(make_call("chat", {"model": "gpt-4o-mini", "messages": ctx}))
    assert plain.body["choices"][0]["message"]["content"].startswith("{\"name\"")


# ---- embeddings --------------------------------------------------------------------------------------------------
def emb(inp, **extra):
    return make_call("embeddings", {"model": "text-embedding-3-small", "input": inp, **extra})


def cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_embeddings_shape_determinism_and_dims(replay):
    out = await replay.embed(emb(["The cat sat on the mat.", "Stock markets fell sharply today."]))
    assert set(out) == {"object", "data", "model", "usage"} and out["object"] == "list"
    assert out["model"] == "text-embedding-3-small"
    assert [d["index"] for d in out["data"]] == [0, 1] and {d["object"] for d in out["data"]} == {"embedding"}
    v = out["data"][0]["embedding"]
    assert len(v) == 1536 and math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-5)
    n = tokens.count_text("The cat sat on the mat.", "text-embedding-3-small") + tokens.count_text(
        "Stock markets fell sharply today.", "text-embedding-3-small")
    assert out["usage"] == {"prompt_tokens": n, "total_tokens": n}
    fresh = ReplayUpstream(cache_dir=replay.cache_dir)
    assert (await fresh.embed(emb(["The cat sat on the mat.", "Stock markets fell sharply today."]))) == out
    short = await replay.embed(emb("The cat sat on the mat.", dimensions=256))
    assert len(short["data"][0]["embedding"]) == 256
    large = await replay.embed(make_call("embeddings", {"model": "text-embedding-3-large", "input": "hi"}))
    assert len(large["data"][0]["embedding"]) == 3072


async def test_embeddings_base64_matches_floats(replay):
    floats = await replay.embed(emb("hello base64 world"))
    b64 = await replay.embed(emb("hello base64 world", encoding_format="base64"))
    s = b64["data"][0]["embedding"]
    assert isinstance(s, str)
    np.testing.assert_array_equal(vector_from_base64(s), np.array(floats["data"][0]["embedding"], dtype=np.float32))
    assert len(base64.b64decode(s)) == 4 * 1536


async def test_embeddings_similar_texts_are_closer(replay):
    texts = ["How do I reset my password?", "How can I reset my account password?",
             "What is the boiling point of water at sea level?", "Quarterly revenue grew by five percent."]
    vecs = [d["embedding"] for d in (await replay.embed(emb(texts)))["data"]]
    assert cos(vecs[0], vecs[1]) > 0.5
    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]) + 0.3
    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[3]) + 0.3


async def test_embeddings_token_array_inputs(replay):
    enc = tokens.encoding_for("text-embedding-3-small")
    text = "Token arrays embed like their text."
    by_text = await replay.embed(emb(text))
    by_ids = await replay.embed(emb(enc.encode(text)))
    by_list = await replay.embed(emb([enc.encode(text), enc.encode("other")]))
    assert by_ids["data"][0]["embedding"] == by_text["data"][0]["embedding"] == by_list["data"][0]["embedding"]
    assert by_ids["usage"]["prompt_tokens"] == len(enc.encode(text))


@pytest.mark.parametrize("bad", [
    {"input": ""}, {"input": []}, {"input": [""]}, {"input": None}, {"input": [1.5]},
    {"input": "x", "dimensions": 0}, {"input": "x", "dimensions": 5000}, {"input": "x", "encoding_format": "hex"},
    {"input": "word " * 9000},
])
async def test_embeddings_reject_invalid_input(replay, bad):
    with pytest.raises(InvalidRequest):
        await replay.embed(make_call("embeddings", {"model": "text-embedding-3-small", **bad}))


@pytest.mark.parametrize("bad", [{"messages": []}, {"n": 0}, {"n": 500}, {"max_tokens": 0}, {"max_tokens": "5"}])
async def test_chat_rejects_invalid_parameters(replay, bad):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **bad}
    with pytest.raises(InvalidRequest):
        await replay.complete(make_call("chat", body))
