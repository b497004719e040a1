"""With DG_NATS_URL set, every answered request becomes a usage event on JetStream (no bodies)."""

import asyncio
import os
import uuid

import pytest

NATS_URL = os.environ.get("DG_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
def nats_stream():
    import nats

    from conftest import service_missing

    name = "DGT_" + uuid.uuid4().hex[:10].upper()
    prefix = "dgt." + name.lower()

    async def probe():
        nc = await nats.connect(NATS_URL, allow_reconnect=False, connect_timeout=2)
        await nc.jetstream(timeout=2).account_info()
        await nc.close()

    try:
        asyncio.run(probe())
    except Exception as e:  # noqa: BLE001
        service_missing("NATS JetStream at " + NATS_URL, e)
    yield name, prefix

    async def drop():
        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(name)
        except Exception:  # noqa: BLE001
            pass
        await nc.close()

    asyncio.run(drop())


def test_requests_publish_usage_events(make_gateway, nats_stream):
    from distillguard.events import iter_usage

    stream, prefix = nats_stream
    gw = make_gateway(nats_url=NATS_URL, nats_stream=stream, nats_subject_prefix=prefix)
    org, key = gw.active_key("events")
    h = {"Authorization": f"Bearer {key['key']}"}
    ids = []
    for i in range(5):
        r = gw.http.post("/v1/chat/completions", headers=h, json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"SECRET-PROMPT-{i}"}], "max_tokens": 10})
        ids.append(r.headers["x-request-id"])
    gw.srv.stop()  # graceful shutdown drains the publisher

    async def read():
        return [e async for e in iter_usage(NATS_URL, stream, subject_prefix=prefix, idle_timeout=2)]

    events = asyncio.run(read())
    assert sorted(e.id for e in events) == sorted(ids)
    for e in events:
        assert e.org == org["id"] and e.status == 200 and e.completion_tokens > 0
        assert b"SECRET-PROMPT" not in e.to_json()  # usage only: no prompt, no answer
