"""The OpenAI-compatible pass-through against a real local HTTP server (and MockTransport for parsing)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import httpx
import pytest

from distillguard.config import ModelRoute
from distillguard.errors import GatewayError, UpstreamError, UpstreamTimeout
from distillguard.upstreams.openai import OpenAIUpstream

from .conftest import FakeSleep, make_call
from .fake_openai import WORDS, FakeOpenAI

SECRET = "sk-upstream-secret-value"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


def route(base_url: str, **kw) -> ModelRoute:
    opts = {"name": "client-model", "upstream": "openai", "base_url": base_url, "upstream_model": "real-model",
            "api_key_env": "DG_TEST_UPSTREAM_KEY", "max_retries": 2, **kw}
    return ModelRoute(**opts)


@pytest.fixture
async def upstream(fake, monkeypatch, fake_sleep) -> OpenAIUpstream:
    monkeypatch.setenv("DG_TEST_UPSTREAM_KEY", SECRET)
    up = OpenAIUpstream(route(fake.base_url), sleep=fake_sleep)
    yield up
    await up.aclose()


def chat_call(up: OpenAIUpstream, **extra):
    body = {"model": "client-model", "messages": [{"role": "user", "content": "hi"}], **extra}
    return make_call("chat", body, route=up.route)


async def collect(agen):
    return [c async for c in agen]


async def test_non_streaming_pass_through_renames_model_and_authenticates(upstream, fake):
    comp = await upstream.complete(chat_call(upstream, temperature=0.2, stream_options={"include_usage": True}))
    (req,) = fake.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {SECRET}"
    assert req["body"]["model"] == "real-model" and req["body"]["temperature"] == 0.2
    assert "stream_options" not in req["body"] and "stream" not in req["body"]
    assert comp.body["model"] == "client-model"
    assert comp.body["choices"][0]["message"]["content"] == "".join(WORDS)
    assert comp.texts == ["".join(WORDS)] and comp.finish_reasons == ["stop"]
    assert (comp.prompt_tokens, comp.completion_tokens) == (11, 5)
    assert comp.extra["upstream_request_id"] == "upstream-req-1"


async def test_client_model_name_goes_upstream_without_upstream_model(fake, fake_sleep):
    up = OpenAIUpstream(route(fake.base_url, upstream_model=None, api_key_env=None), sleep=fake_sleep)
    try:
        comp = await up.complete(chat_call(up))
    finally:
        await up.aclose()
    assert fake.requests[0]["body"]["model"] == "client-model" and comp.body["model"] == "client-model"
    assert "authorization" not in fake.requests[0]["headers"]


async def test_one_pooled_connection_is_reused(upstream, fake):
    for _ in range(3):
        await upstream.complete(chat_call(upstream))
    # the upstream saw every request arrive on the same client connection (keep-alive pool)
    assert len({r["peer"] for r in fake.requests}) == 1 and len(fake.requests) == 3


@pytest.mark.parametrize("wants_usage", [False, True])
async def test_streaming_pass_through(upstream, fake, wants_usage):
    extra = {"stream": True, **({"stream_options": {"include_usage": True}} if wants_usage else {})}
    chunks = await collect(upstream.stream(chat_call(upstream, **extra)))
    sent = fake.requests[0]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "real-model"
    assert {c["model"] for c in chunks} == {"client-model"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(WORDS)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    if wants_usage:
        assert all("usage" in c for c in chunks)
    else:
        assert all("usage" not in c for c in chunks[:-1])


async def test_stream_yields_chunks_as_they_arrive(upstream, fake):
    """The server holds the stream after its first chunk until the test has seen that chunk."""
    fake.mode = "gated"
    agen = upstream.stream(chat_call(upstream, stream=True))
    first = await agen.__anext__()
    second = await agen.__anext__()
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert second["choices"][0]["delta"]["content"] == WORDS[0]
    fake.release.set()
    rest = await collect(agen)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in rest if c["choices"]) == "".join(WORDS[1:])


async def test_legacy_completions_and_embeddings_pass_through(upstream, fake):
    comp = await upstream.complete(make_call("completions", {"model": "client-model", "prompt": "Say"},
                                             route=upstream.route))
    assert comp.texts == [" continued"] and comp.body["model"] == "client-model"
    assert fake.requests[-1]["path"] == "/v1/completions"
    out = await upstream.embed(make_call("embeddings", {"model": "client-model", "input": ["a", "b"],
                                                        "encoding_format": "float"}, route=upstream.route))
    assert out["model"] == "client-model" and [d["index"] for d in out["data"]] == [0, 1]
    assert fake.requests[-1]["body"] == {"model": "real-model", "input": ["a", "b"], "encoding_format": "float"}


async def test_server_error_is_retried_then_502(upstream, fake, fake_sleep):
    fake.mode = "500"
    with pytest.raises(UpstreamError) as ei:
        await upstream.complete(chat_call(upstream))
    assert ei.value.status == 502
    assert len(fake.requests) == 3  # 1 + max_retries
    assert len(fake_sleep.calls) == 2 and fake_sleep.calls[1] > fake_sleep.calls[0] * 0.9


async def test_stream_server_error_is_retried_before_first_byte(upstream, fake, fake_sleep):
    fake.mode = "500"
    with pytest.raises(UpstreamError) as ei:
        await collect(upstream.stream(chat_call(upstream, stream=True)))
    assert ei.value.status == 502 and len(fake.requests) == 3


async def test_transient_503_is_retried_honouring_retry_after(upstream, fake, fake_sleep):
    fake.mode = "flaky"
    comp = await upstream.complete(chat_call(upstream))
    assert comp.texts == ["".join(WORDS)] and len(fake.requests) == 2
    assert fake_sleep.calls == [0.5]


async def test_upstream_rate_limit_is_retried_then_502(upstream, fake):
    fake.mode = "429"
    with pytest.raises(UpstreamError) as ei:
        await upstream.complete(chat_call(upstream))
    assert (ei.value.status, ei.value.code) == (502, "upstream_rate_limited") and len(fake.requests) == 3


async def test_timeout_is_504_and_not_retried(fake, fake_sleep):
    up = OpenAIUpstream(route(fake.base_url, timeout_s=0.3), sleep=fake_sleep)
    fake.mode = "slow"
    try:
        with pytest.raises(UpstreamTimeout) as ei:
            await up.complete(chat_call(up))
    finally:
        await up.aclose()
    assert ei.value.status == 504 and len(fake.requests) == 1


@pytest.mark.parametrize("streaming", [False, True])
async def test_provider_400_passes_through_with_its_message(upstream, fake, streaming):
    fake.mode = "400"
    with pytest.raises(GatewayError) as ei:
        if streaming:
            await collect(upstream.stream(chat_call(upstream, stream=True)))
        else:
            await upstream.complete(chat_call(upstream))
    e = ei.value
    assert (e.status, e.message, e.code, e.param, e.type) == (
        400, "Invalid 'messages[0].role': bad role.", "invalid_value", "messages[0].role", "invalid_request_error")
    assert len(fake.requests) == 1  # the client's fault: no retry


async def test_provider_401_is_our_fault_502_and_leaks_nothing(upstream, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.mode = "401"
    with pytest.raises(UpstreamError) as ei:
        await upstream.complete(chat_call(upstream))
    assert ei.value.status == 502 and "sk-" not in ei.value.message
    assert SECRET not in caplog.text and "sk-upst" not in caplog.text


async def test_invalid_json_is_502(upstream, fake):
    fake.mode = "garbage"
    with pytest.raises(UpstreamError) as ei:
        await upstream.complete(chat_call(upstream))
    assert ei.value.status == 502


async def test_error_event_mid_stream_raises_after_the_chunks_sent(upstream, fake):
    fake.mode = "midstream"
    got = []
    with pytest.raises(UpstreamError, match="upstream exploded"):
        async for c in upstream.stream(chat_call(upstream, stream=True)):
            got.append(c)
    assert len(got) == 3  # role chunk + two words


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("streaming", [False, True])
async def test_connection_refused_is_retried_then_502(fake_sleep, streaming):
    up = OpenAIUpstream(route(f"http://127.0.0.1:{_free_port()}/v1", max_retries=1), sleep=fake_sleep)
    try:
        with pytest.raises(UpstreamError) as ei:
            if streaming:
                await collect(up.stream(chat_call(up, stream=True)))
            else:
                await up.complete(chat_call(up))
    finally:
        await up.aclose()
    assert ei.value.status == 502 and len(fake_sleep.calls) == 1


# ---- parsing and mapping details (MockTransport) -------------------------------------------------------------
def mock_upstream(handler, **kw) -> OpenAIUpstream:
    return OpenAIUpstream(route("http://upstream.test/v1", **kw), api_key="k", transport=httpx.MockTransport(handler),
                          sleep=FakeSleep())


async def test_sse_parsing_tolerates_comments_crlf_multiline_and_missing_blank_lines():
    body = (b": hello\r\n\r\n"
            b"event: message\r\ndata: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"a\"}}]}\r\n\r\n"
            b"data: {\"choices\": [{\"index\": 0,\ndata: \"delta\": {\"content\": \"b\"}}]}\n\n"
            b"data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"c\"}}]}\n"
            b"data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"d\"}}]}\n"
            b"data: [DONE]\n\n"
            b"data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"after done\"}}]}\n\n")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    up = mock_upstream(handler)
    chunks = await collect(up.stream(chat_call(up, stream=True)))
    await up.aclose()
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "abcd"


@pytest.mark.parametrize("status,expected", [(404, 404), (413, 413), (422, 422), (403, 502), (418, 502),
                                             (502, 502), (503, 502), (504, 504)])
async def test_status_mapping(status, expected):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": f"upstream says {status}", "code": "x"}})

    up = mock_upstream(handler, max_retries=0)
    with pytest.raises(GatewayError) as ei:
        await up.complete(chat_call(up))
    await up.aclose()
    assert ei.value.status == expected
    assert (f"upstream says {status}" in ei.value.message) == (expected in (404, 413, 422))


async def test_non_stream_answer_to_a_stream_request_is_502():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "x", "choices": []})

    up = mock_upstream(handler)
    with pytest.raises(UpstreamError):
        await collect(up.stream(chat_call(up, stream=True)))
    await up.aclose()


def test_base_url_is_required():
    with pytest.raises(ValueError):
        OpenAIUpstream(ModelRoute(name="m", upstream="openai"))
