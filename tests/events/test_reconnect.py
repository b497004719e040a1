"""A NATS outage while the gateway runs: events queue (bounded), then flow again after reconnect."""

from __future__ import annotations

import contextlib

from distillguard.events import NatsUsagePublisher, iter_usage

from .conftest import PrivateNats, make_record, wait_until


async def test_outage_queues_then_publishes_after_reconnect_and_drops_the_overflow(private_nats: PrivateNats) -> None:
    pub = NatsUsagePublisher(private_nats.url, stream="DG_USAGE", max_queue=5, ack_timeout=2)
    await pub.start()
    before = [make_record(i) for i in range(5)]
    for r in before:
        pub.observe(r)
    await wait_until(lambda: pub.published == 5, what="events before the outage")

    private_nats.stop()
    await wait_until(lambda: not pub.connected, what="the publisher to notice the outage")
    during = [make_record(i) for i in range(5, 13)]
    for r in during:  # never blocks: 5 fit in the queue, 3 are dropped and counted
        pub.observe(r)
    assert (pub.queued, pub.dropped) == (5, 3)

    private_nats.start()  # same port, same store: the stream is still there
    await wait_until(lambda: pub.published == 10, timeout=20, what="queued events after reconnect")
    await pub.aclose()
    assert (pub.published, pub.dropped, pub.failed) == (10, 3, 0)

    async with contextlib.aclosing(iter_usage(private_nats.url, idle_timeout=0, fetch_timeout=0.3)) as it:
        ids = [ev.id async for ev in it]
    assert ids == [r.id for r in before + during[:5]]
