"""Through the gateway to an OpenAI-compatible upstream: pass-through, failures, disconnects."""

import json
import time

import openai
import pytest

from distillguard.config import ModelRoute
from distillguard.http.server import free_port
from distillguard.ledger.store import LedgerStore
from upstreams.fake_openai import FakeOpenAI


@pytest.fixture
def fake():
    f = FakeOpenAI()
    f.start()
    yield f
    f.stop()


@pytest.fixture
def gw(make_gateway, fake):
    models = [
        ModelRoute(name="up-model", upstream="openai", base_url=fake.base_url, upstream_model="provider-model",
                   timeout_s=1.0, max_retries=1),
        ModelRoute(name="dead-model", upstream="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0),
        ModelRoute(name="gpt-4o-mini", upstream="replay", chunk_delay_ms=15),
    ]
    g = make_gateway(models=models)
    g.org, key = g.active_key("passthrough")
    g.key = key["key"]
    g.client = openai.OpenAI(base_url=g.url + "/v1", api_key=g.key, max_retries=0)
    return g


def _records(g):
    g.app.state.ledger.flush(10)
    return list(LedgerStore(g.app.state.engine).iter_records(org=g.org["id"]))


def _usage(g):
    return g.admin("GET", f"/admin/orgs/{g.org['id']}")["usage"]["daily_tokens"]


def test_pass_through_renames_the_model_and_counts_upstream_usage(gw, fake):
    r = gw.client.chat.completions.create(model="up-model", messages=[{"role": "user", "content": "hello"}])
    assert r.model == "up-model" and r.choices[0].message.content == "Hello from the upstream."
    assert fake.requests[-1]["body"]["model"] == "provider-model"
    assert "authorization" not in {k.lower() for k in fake.requests[-1]["headers"]} or \
        gw.key not in fake.requests[-1]["headers"].get("authorization", "")  # the customer's key never goes upstream
    assert _usage(gw) == 16  # the upstream's own usage numbers are what is charged


def test_pass_through_streaming(gw, fake):
    parts = [c.choices[0].delta.content or "" for c in gw.client.chat.completions.create(
        model="up-model", messages=[{"role": "user", "content": "hello"}], stream=True) if c.choices]
    assert "".join(parts) == "Hello from the upstream."
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert _usage(gw) == 16


def test_upstream_500_is_502_and_releases_the_reservation(gw, fake):
    fake.mode = "500"
    with pytest.raises(openai.InternalServerError) as e:
        gw.client.chat.completions.create(model="up-model", messages=[{"role": "user", "content": "x"}], max_tokens=500)
    assert e.value.status_code == 502
    assert _usage(gw) == 0
    rec = _records(gw)[-1]
    assert rec.status == 502 and rec.prompt_tokens == 0


def test_upstream_timeout_is_504(gw, fake):
    fake.mode = "slow"
    with pytest.raises(openai.APIStatusError) as e:
        gw.client.chat.completions.create(model="up-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 504 and e.value.code == "upstream_timeout"


def test_unreachable_upstream_is_502(gw):
    with pytest.raises(openai.InternalServerError) as e:
        gw.client.chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 502


def test_upstream_400_is_passed_to_the_client(gw, fake):
    fake.mode = "400"
    with pytest.raises(openai.BadRequestError) as e:
        gw.client.chat.completions.create(model="up-model", messages=[{"role": "user", "content": "x"}])
    assert "bad role" in e.value.message


def test_midstream_failure_is_reported_in_band_and_charges_what_was_sent(gw, fake):
    fake.mode = "midstream"
    with gw.http.stream("POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {gw.key}"}, json={
            "model": "up-model", "messages": [{"role": "user", "content": "x"}], "stream": True}) as r:
        events = [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ")]
    assert json.loads(events[-1])["error"]
    rec = _records(gw)[-1]
    assert rec.response_text == "Hello from" and rec.completion_tokens == 2
    assert _usage(gw) == rec.prompt_tokens + rec.completion_tokens


def test_client_disconnect_mid_stream_charges_only_what_was_sent(gw):
    body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 4000,
            "messages": [{"role": "user", "content": "Write a long essay about the history of the printing press."}]}
    received = []
    with gw.http.stream("POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {gw.key}"}, json=body) as r:
        for ln in r.iter_lines():
            if ln.startswith("data: {") and json.loads(ln[6:])["choices"] and \
                    json.loads(ln[6:])["choices"][0]["delta"].get("content"):
                received.append(ln)
            if len(received) >= 3:
                break  # leave: the connection closes mid-stream
    full = gw.client.chat.completions.create(**{k: v for k, v in body.items() if k != "stream"})
    deadline = time.time() + 10
    while time.time() < deadline:
        recs = [x for x in _records(gw) if x.error_code == "client_disconnected"]
        if recs:
            break
        time.sleep(0.1)
    assert recs, "the disconnected stream has no ledger record"
    cut = recs[0]
    assert 0 < cut.completion_tokens < full.usage.completion_tokens
    total_ledger = sum(x.prompt_tokens + x.completion_tokens for x in _records(gw))
    deadline = time.time() + 5
    while _usage(gw) != total_ledger and time.time() < deadline:
        time.sleep(0.1)
    assert _usage(gw) == total_ledger
