"""NatsUsagePublisher and iter_usage against the machine's real NATS JetStream server."""

from __future__ import annotations

import contextlib
import socket

import nats
import orjson
import pytest
from nats.js.api import StorageType

from distillguard.events import (
    EventStreamError,
    NatsUnavailable,
    NatsUsagePublisher,
    UsageEvent,
    iter_usage,
    subject_for,
)

from .conftest import StreamRef, make_record, wait_until


async def read_all(ref: StreamRef, **kw) -> list[UsageEvent]:
    async with contextlib.aclosing(
        iter_usage(ref.url, ref.name, subject_prefix=ref.prefix, idle_timeout=0, fetch_timeout=0.3, **kw)
    ) as it:
        return [ev async for ev in it]


@contextlib.asynccontextmanager
async def jetstream(url: str):
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def stream_count(ref: StreamRef) -> int:
    async with jetstream(ref.url) as js:
        return (await js.stream_info(ref.name)).state.messages


async def test_observed_records_come_back_exactly_once_without_body_or_text(usage_stream: StreamRef) -> None:
    orgs = ["org_a", "org_b", None, "org.with dots"]
    recs = [make_record(i, org=orgs[i % 4], status=200 if i % 7 else 429) for i in range(300)]
    pub = NatsUsagePublisher(**usage_stream.publisher_args())
    await pub.start()
    for r in recs:
        pub.observe(r)
    await pub.aclose()
    assert (pub.published, pub.duplicates, pub.dropped, pub.failed) == (300, 0, 0, 0)

    events = await read_all(usage_stream)
    assert events == [UsageEvent.from_record(r) for r in recs]  # all, once, in order, right fields

    async with jetstream(usage_stream.url) as js:
        assert (await js.stream_info(usage_stream.name)).state.messages == 300
        for seq in (1, 2, 3, 4, 150, 300):
            rec = recs[seq - 1]
            msg = await js.get_msg(usage_stream.name, seq)
            assert msg.subject == subject_for(usage_stream.prefix, rec.org)
            assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == rec.id
            body = orjson.loads(msg.data)
            assert body["id"] == rec.id
            assert not {"request", "response_text", "ip", "user_agent", "text"} & body.keys()
            assert b"MARKER" not in msg.data
    assert subject_for(usage_stream.prefix, None).endswith(".anonymous")
    assert subject_for(usage_stream.prefix, "org.with dots").endswith(".org_with_dots")


async def test_duplicate_record_id_is_stored_once(usage_stream: StreamRef) -> None:
    rec = make_record(1)
    pub = NatsUsagePublisher(**usage_stream.publisher_args())
    await pub.start()
    pub.observe(rec)
    pub.observe(rec)
    await pub.aclose()
    assert (pub.published, pub.duplicates) == (1, 1)

    other = NatsUsagePublisher(**usage_stream.publisher_args())  # e.g. a retry from another replica
    await other.start()
    other.observe(rec)
    other.observe(make_record(2, id="req_second"))
    await other.aclose()
    assert (other.published, other.duplicates) == (1, 1)
    assert [e.id for e in await read_all(usage_stream)] == [rec.id, "req_second"]
    assert await stream_count(usage_stream) == 2


async def test_full_queue_drops_and_counts_instead_of_blocking(usage_stream: StreamRef) -> None:
    pub = NatsUsagePublisher(**usage_stream.publisher_args(), max_queue=3)
    recs = [make_record(i) for i in range(5)]
    for r in recs:  # not started yet: events wait in the queue, the overflow is dropped
        pub.observe(r)
    assert (pub.queued, pub.dropped) == (3, 2)
    await pub.start()
    await pub.aclose()
    assert (pub.published, pub.dropped, pub.failed) == (3, 2, 0)
    assert [e.id for e in await read_all(usage_stream)] == [r.id for r in recs[:3]]


async def test_close_without_start_and_observe_after_close_count_drops() -> None:
    pub = NatsUsagePublisher("nats://127.0.0.1:1")  # never contacted
    pub.observe(make_record(1))
    pub.observe(make_record(2))
    await pub.aclose()
    assert (pub.dropped, pub.queued, pub.published) == (2, 0, 0)
    pub.observe(make_record(3))
    assert pub.dropped == 3
    await pub.aclose()  # idempotent


async def test_observe_never_raises_on_unusable_records() -> None:
    pub = NatsUsagePublisher("nats://127.0.0.1:1")
    pub.observe(object())  # type: ignore[arg-type]
    pub.observe(make_record(1, id=None))
    pub.observe(make_record(2, ts="yesterday"))
    assert (pub.dropped, pub.queued) == (3, 0)
    pub.observe(make_record(3))
    assert pub.queued == 1
    await pub.aclose()


async def test_aclose_publishes_everything_queued(usage_stream: StreamRef) -> None:
    pub = NatsUsagePublisher(**usage_stream.publisher_args(), batch_size=64)
    await pub.start()
    for i in range(3000):
        pub.observe(make_record(i, org=f"org_{i % 5}"))
    assert pub.queued == 3000  # nothing is sent synchronously by observe
    await pub.aclose(timeout=30)
    assert pub.stats() == {"published": 3000, "duplicates": 0, "dropped": 0, "failed": 0, "queued": 0}
    assert await stream_count(usage_stream) == 3000
    assert len(await read_all(usage_stream, org="org_3")) == 600


async def test_unreachable_server_raises_a_clear_error_without_secrets() -> None:
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pub = NatsUsagePublisher(f"nats://dg:hunter2@127.0.0.1:{port}", connect_timeout=1)
    with pytest.raises(NatsUnavailable) as ei:
        await pub.start()
    msg = str(ei.value)
    assert f"cannot connect to NATS at nats://***@127.0.0.1:{port}" in msg
    assert "hunter2" not in msg
    assert isinstance(ei.value, ConnectionError)
    assert not pub.connected
    await pub.aclose()


async def test_stream_is_created_with_file_storage_limits_and_dedupe_window(usage_stream: StreamRef) -> None:
    pub = NatsUsagePublisher(**usage_stream.publisher_args(), max_age=3600, duplicate_window=60)
    await pub.start()
    again = NatsUsagePublisher(**usage_stream.publisher_args())  # an existing stream is reused as is
    await again.start()
    await again.aclose()
    await pub.aclose()
    async with jetstream(usage_stream.url) as js:
        cfg = (await js.stream_info(usage_stream.name)).config
    assert cfg.subjects == [f"{usage_stream.prefix}.>"]
    assert cfg.storage == StorageType.FILE
    assert cfg.max_age == pytest.approx(3600)
    assert cfg.duplicate_window == pytest.approx(60)


async def test_a_stream_that_does_not_capture_our_subjects_is_an_error(usage_stream: StreamRef) -> None:
    async with jetstream(usage_stream.url) as js:
        await js.add_stream(name=usage_stream.name, subjects=[f"{usage_stream.prefix}-other.>"])
    pub = NatsUsagePublisher(**usage_stream.publisher_args())
    with pytest.raises(EventStreamError, match="captured by"):
        await pub.start()
    await pub.aclose()


async def test_a_deleted_stream_is_recreated(usage_stream: StreamRef) -> None:
    pub = NatsUsagePublisher(**usage_stream.publisher_args())
    await pub.start()
    pub.observe(make_record(1))
    await wait_until(lambda: pub.published == 1, what="first event published")
    async with jetstream(usage_stream.url) as js:
        await js.delete_stream(usage_stream.name)
    late = make_record(2)
    pub.observe(late)
    await pub.aclose(timeout=10)
    assert (pub.published, pub.failed) == (2, 0)
    assert [e.id for e in await read_all(usage_stream)] == [late.id]


async def test_durable_reader_resumes_after_what_it_consumed(usage_stream: StreamRef) -> None:
    pub = NatsUsagePublisher(**usage_stream.publisher_args())
    await pub.start()
    first = [make_record(i) for i in range(5)]
    for r in first:
        pub.observe(r)
    await wait_until(lambda: pub.published == 5, what="5 events published")
    assert [e.id for e in await read_all(usage_stream, durable="detector")] == [r.id for r in first]
    more = [make_record(i) for i in range(5, 8)]
    for r in more:
        pub.observe(r)
    await pub.aclose()
    assert [e.id for e in await read_all(usage_stream, durable="detector")] == [r.id for r in more]
    assert len(await read_all(usage_stream)) == 8  # an ephemeral reader starts from the beginning


async def test_reading_a_missing_stream_is_a_clear_error(nats_url: str) -> None:
    with pytest.raises(EventStreamError, match="no JetStream stream DGT_NO_SUCH_STREAM"):
        async with contextlib.aclosing(iter_usage(nats_url, "DGT_NO_SUCH_STREAM", idle_timeout=0)) as it:
            async for _ in it:
                pass
