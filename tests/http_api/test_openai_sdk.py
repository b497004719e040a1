"""The official openai SDK against a real running gateway: only base_url changes."""

import openai
import pytest


@pytest.fixture
def tenant(gateway):
    org, key = gateway.active_key("sdk-tenant")
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key["key"], max_retries=0)
    yield gateway, org, key, client
    client.close()


def test_chat_non_streaming(tenant):
    gw, org, key, client = tenant
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Write a haiku about autumn."}])
    assert r.object == "chat.completion" and r.model == "gpt-4o-mini"
    assert r.choices[0].message.role == "assistant" and len(r.choices[0].message.content) > 0
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_streaming_matches_non_streaming(tenant):
    gw, org, key, client = tenant
    msgs = [{"role": "user", "content": "Explain what a hash table is."}]
    full = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=80)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=80, stream=True,
                                            stream_options={"include_usage": True})
    parts, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.content:
                parts.append(ch.delta.content)
            finish = ch.finish_reason or finish
    assert "".join(parts) == full.choices[0].message.content
    assert len(parts) > 3  # token-sized chunks, not one blob
    assert usage is not None and usage.completion_tokens == full.usage.completion_tokens
    assert finish == full.choices[0].finish_reason


def test_streaming_without_include_usage_sends_no_usage_chunk(tenant):
    gw, org, key, client = tenant
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], stream=True, max_tokens=20))
    assert chunks and all(c.usage is None for c in chunks)


def test_completions_and_embeddings_and_models(tenant):
    gw, org, key, client = tenant
    c = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Write a tagline for an ice cream shop.", max_tokens=30)
    assert c.object == "text_completion" and c.choices[0].text and c.usage.completion_tokens <= 30
    e = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "goodbye"])
    assert len(e.data) == 2 and len(e.data[0].embedding) > 100
    assert e.data[0].embedding != e.data[1].embedding
    models = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small"} <= models


def test_authentication_error(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="dg-" + "A" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        client.models.list()
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key"


def test_permission_denied_with_suspension_message(tenant):
    gw, org, key, client = tenant
    gw.admin("POST", f"/admin/orgs/{org['id']}/suspend", json={"reason": "harvesting pattern"})
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "account_suspended"
    assert "suspended pending investigation" in e.value.message
    gw.admin("POST", f"/admin/orgs/{org['id']}/reinstate")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_rate_limit_error(tenant):
    gw, org, key, client = tenant
    gw.admin("POST", "/admin/limits", json={"org": org["id"], "rpm": 2})
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert e.value.code == "rate_limit_exceeded"
    assert e.value.response.headers.get("x-ratelimit-limit-requests") or e.value.response.headers.get("retry-after")


def test_insufficient_quota_error(tenant):
    gw, org, key, client = tenant
    gw.admin("POST", "/admin/limits", json={"key": key["id"], "daily_tokens": 10})
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50)
    assert e.value.code == "insufficient_quota"


def test_bad_request_and_not_found(tenant):
    gw, org, key, client = tenant
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=5)
    assert e.value.param == "messages"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], temperature=5)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"


def test_rate_limit_headers_and_request_id(tenant):
    gw, org, key, client = tenant
    gw.admin("POST", "/admin/limits", json={"org": org["id"], "rpm": 100, "tpm": 100000})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    h = raw.headers
    assert h["x-ratelimit-limit-requests"] == "100"
    assert int(h["x-ratelimit-remaining-requests"]) == 99
    assert h["x-ratelimit-limit-tokens"] == "100000"
    assert h["x-ratelimit-reset-requests"].endswith(("ms", "s"))
    assert h["x-request-id"].startswith("req_")
