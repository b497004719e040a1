"""Usage events on NATS JetStream: a non-blocking publisher (a ledger observer) and a reader.

Delivery is best effort by design: the ledger is the source of truth. ``observe`` only puts a small
event on a bounded in-memory queue; one background task publishes it with JetStream acks. When the
queue is full (NATS down for long, or slower than the traffic) new events are *dropped and counted*
rather than ever delaying a request; anything downstream that needs completeness (audits, exports)
reads the ledger. Each message carries ``Nats-Msg-Id`` = the ledger record id, so a retried publish
(lost ack, reconnect) is stored once within the stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from ..ledger.record import LedgerRecord
from .usage import UsageEvent, subject_for, subject_token

log = logging.getLogger("distillguard.events")

DEFAULT_STREAM = "DG_USAGE"
DEFAULT_PREFIX = "dg.usage"
MSG_ID_HEADER = "Nats-Msg-Id"

_Item = tuple[str, bytes, str]  # subject, payload, message id


class EventStreamError(RuntimeError):
    """The usage event stream cannot be used as configured."""


class NatsUnavailable(EventStreamError, ConnectionError):
    """NATS (or its JetStream) could not be reached."""


def redact_url(url: str) -> str:
    """The server URL(s) without credentials (user, password or token)."""
    out = []
    for part in url.split(","):
        p = urllib.parse.urlsplit(part.strip())
        if p.username is not None or p.password is not None:
            host = p.hostname or ""
            netloc = "***@" + host + (f":{p.port}" if p.port else "")
            p = p._replace(netloc=netloc)
        out.append(urllib.parse.urlunsplit(p))
    return ",".join(out)


async def _connect(url: str, timeout: float, name: str, **callbacks: Any) -> NATS:
    """Connect with reconnects enabled forever; the *first* connect is bounded by ``timeout``."""
    nc = NATS()
    last: list[BaseException] = []

    async def on_error(e: Exception) -> None:
        last[:] = [e]
        log.debug("nats error (%s): %s: %s", redact_url(url), type(e).__name__, e)

    servers = [s.strip() for s in url.split(",") if s.strip()]
    try:
        await asyncio.wait_for(
            nc.connect(
                servers=servers,
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,  # a long-running gateway never gives up
                reconnect_time_wait=1,
                connect_timeout=max(1, min(2, int(timeout))),
                ping_interval=20,
                max_outstanding_pings=3,
                error_cb=on_error,
                **callbacks,
            ),
            timeout,
        )
    except asyncio.CancelledError:
        await _close_quietly(nc)
        raise
    except Exception as e:
        await _close_quietly(nc)
        cause = last[0] if last else e
        why = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        raise NatsUnavailable(f"cannot connect to NATS at {redact_url(url)} within {timeout:g}s ({why})") from e
    return nc


async def _close_quietly(nc: NATS) -> None:
    try:
        await asyncio.wait_for(nc.close(), 1)
    except Exception:  # noqa: BLE001 - already failing; keep the first error
        pass


class NatsUsagePublisher:
    """Publishes one :class:`UsageEvent` per ledger record to ``<subject_prefix>.<org>``.

    ``observe`` is the ledger observer (synchronous, O(1), never blocks or raises). Counters:
    ``published`` (stored), ``duplicates`` (already stored: deduplicated by record id),
    ``dropped`` (never sent: queue full, after close, unusable record, or still queued at close),
    ``failed`` (sent but not confirmed after ``max_attempts``, or in flight when close timed out).
    """

    def __init__(
        self,
        url: str,
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_PREFIX,
        max_queue: int = 100_000,
        *,
        max_age: float = 3 * 24 * 3600.0,
        max_bytes: int | None = None,
        duplicate_window: float = 120.0,
        connect_timeout: float = 5.0,
        ack_timeout: float = 5.0,
        batch_size: int = 1000,
        max_attempts: int = 3,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("max_queue, batch_size and max_attempts must be >= 1")
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.max_queue = max_queue
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.duplicate_window = duplicate_window
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.published = 0
        self.duplicates = 0
        self.dropped = 0
        self.failed = 0
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max_queue)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._connected = asyncio.Event()
        self._warned_full = False

    # ---- the observer -------------------------------------------------------------------------------
    def observe(self, record: LedgerRecord) -> None:
        """Queue the record's usage event; drop (and count) it if the queue is full or we are closed."""
        if self._closed:
            self.dropped += 1
            return
        try:
            ev = UsageEvent.from_record(record)
            self._queue.put_nowait((subject_for(self.subject_prefix, ev.org), ev.to_json(), ev.id))
        except asyncio.QueueFull:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.warning("usage event queue full (%d): dropping events (the ledger keeps them)", self.max_queue)
        except Exception:  # noqa: BLE001 - an observer must never raise
            self.dropped += 1
            log.debug("unusable ledger record for a usage event", exc_info=True)

    # ---- life cycle ---------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "duplicates": self.duplicates, "dropped": self.dropped,
                "failed": self.failed, "queued": self.queued}

    async def start(self) -> None:
        """Connect, make sure the stream exists, start publishing. Raises :class:`NatsUnavailable`."""
        if self._closed:
            raise EventStreamError("publisher is closed")
        if self._task is not None:
            return
        self._nc = await _connect(
            self.url, self.connect_timeout, "distillguard-usage",
            disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
        )
        self._connected.set()
        self._js = self._nc.jetstream(timeout=self.ack_timeout, publish_async_max_pending=max(4000, 2 * self.batch_size))
        try:
            await self._ensure_stream()
        except BaseException:
            await self._nc.close()
            self._nc = self._js = None
            raise
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dg-usage-publisher")
        log.info("usage events -> %s stream %s (%s.>)", redact_url(self.url), self.stream, self.subject_prefix)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Publish what is queued (waiting at most ``timeout`` seconds), then close the connection."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except asyncio.TimeoutError:
                log.warning("usage events: close timed out with %d queued", self._queue.qsize())
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while True:  # whatever was never sent
            try:
                self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self._queue.task_done()
            self.dropped += 1
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._nc.close(), 2)
            except Exception:  # noqa: BLE001
                log.debug("error closing NATS connection", exc_info=True)
            self._nc = self._js = None
        log.info("usage events closed: %s", self.stats())

    async def __aenter__(self) -> "NatsUsagePublisher":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- internals ----------------------------------------------------------------------------------
    async def _on_disconnected(self) -> None:
        self._connected.clear()
        if not self._closed:
            log.warning("usage events: disconnected from NATS; queueing (max %d)", self.max_queue)

    async def _on_reconnected(self) -> None:
        self._connected.set()
        log.warning("usage events: reconnected to NATS")

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        js = self._js
        wanted = f"{self.subject_prefix}.>"
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=self.stream,
                description="distillguard usage events (one per API request; the ledger is the source of truth)",
                subjects=[wanted],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                max_age=self.max_age,
                max_bytes=self.max_bytes if self.max_bytes is not None else -1,
                duplicate_window=self.duplicate_window,
            )
            try:
                await js.add_stream(config)
            except nats.js.errors.APIError as e:
                raise EventStreamError(f"cannot create JetStream stream {self.stream} for {wanted}: {e}") from e
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as e:
            raise NatsUnavailable(f"JetStream is not available at {redact_url(self.url)} ({type(e).__name__})") from e
        # The stream exists (another replica made it, or an operator tuned it): leave its limits alone,
        # but it must be the one that captures our subjects.
        probe = f"{self.subject_prefix}.{subject_token('probe')}"
        try:
            owner = await js.find_stream_name_by_subject(probe)
        except nats.js.errors.APIError as e:
            owner = f"none ({e})"
        if owner != self.stream:
            raise EventStreamError(f"JetStream stream {self.stream} exists but {probe} is captured by {owner}")

    async def _wait_connected(self) -> None:
        assert self._nc is not None
        while not self._nc.is_connected:
            self._connected.clear()
            try:
                await asyncio.wait_for(self._connected.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async def _run(self) -> None:
        q = self._queue
        while True:
            batch = [await q.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(q.get_nowait())
                except asyncio.QueueEmpty:
                    break
            settled_before = self.published + self.duplicates + self.failed
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self.failed += len(batch) - (self.published + self.duplicates + self.failed - settled_before)
                raise
            except Exception:  # noqa: BLE001 - keep the publisher alive whatever happens
                self.failed += len(batch) - (self.published + self.duplicates + self.failed - settled_before)
                log.exception("usage events: publishing a batch failed")
            finally:
                for _ in batch:
                    q.task_done()
            if q.empty():
                self._warned_full = False

    async def _send(self, batch: list[_Item]) -> None:
        """Publish a batch pipelined (all sent, then all acks awaited); retry the unconfirmed ones."""
        assert self._js is not None
        js = self._js
        pending = batch
        last_err: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            await self._wait_connected()
            futs: list[tuple[asyncio.Future[Any], _Item]] = []
            retry: list[_Item] = []
            for item in pending:
                subject, payload, msg_id = item
                try:
                    fut = await js.publish_async(
                        subject, payload, headers={MSG_ID_HEADER: msg_id}, wait_stall=self.ack_timeout
                    )
                except Exception as e:  # noqa: BLE001 - buffer full, connection closed, ...
                    last_err = e
                    retry.append(item)
                    continue
                futs.append((fut, item))
            if futs:
                await asyncio.wait([f for f, _ in futs], timeout=self.ack_timeout)
            for fut, item in futs:
                if not fut.done():
                    fut.cancel()  # frees the client's pending slot
                    last_err = asyncio.TimeoutError("no publish ack")
                    retry.append(item)
                elif fut.cancelled():
                    retry.append(item)
                elif (exc := fut.exception()) is not None:
                    last_err = exc
                    retry.append(item)
                elif fut.result().duplicate:
                    self.duplicates += 1
                else:
                    self.published += 1
            if not retry:
                return
            pending = retry
            if isinstance(last_err, nats.js.errors.NoStreamResponseError):
                try:  # the stream was deleted under us: recreate it
                    await self._ensure_stream()
                except Exception as e:  # noqa: BLE001
                    last_err = e
            if attempt < self.max_attempts:
                await asyncio.sleep(min(0.1 * 2**attempt, 1.0))
        self.failed += len(pending)
        log.warning("usage events: %d not confirmed after %d attempts (%s)", len(pending), self.max_attempts,
                    f"{type(last_err).__name__}: {last_err}" if last_err else "unknown")


async def iter_usage(
    url: str,
    stream: str = DEFAULT_STREAM,
    durable: str | None = None,
    *,
    subject_prefix: str = DEFAULT_PREFIX,
    org: str | None = None,
    batch: int = 256,
    idle_timeout: float | None = None,
    fetch_timeout: float = 1.0,
    connect_timeout: float = 5.0,
) -> AsyncIterator[UsageEvent]:
    """Read usage events back from the stream, oldest first.

    With ``durable`` the position is kept on the server (a restarted reader resumes after the last
    event it asked for the next one of: each event is acked when the consumer moves on). Without it an
    ephemeral consumer reads from the start. ``org`` filters to one org's subject. ``idle_timeout``
    ends the iteration once the reader has caught up with the stream and nothing new arrived for that
    long (``None``: wait forever). An event that was yielded but not followed by a request for the next
    one is not acked, so it is delivered again (at-least-once) to a durable reader after ``ack_wait``.
    Use as ``async with contextlib.aclosing(iter_usage(...)) as it: async for ev in it: ...``.
    """
    nc = await _connect(url, connect_timeout, "distillguard-usage-reader")
    js = nc.jetstream()
    name = durable
    try:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=max(1000, 2 * batch),
            filter_subject=subject_for(subject_prefix, org) if org else None,
        )
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError as e:
            raise EventStreamError(f"no JetStream stream {stream} at {redact_url(url)}") from e
        if durable:
            try:
                await js.consumer_info(stream, durable)
            except nats.js.errors.NotFoundError:
                await js.add_consumer(stream, config, durable_name=durable)
        else:
            info = await js.add_consumer(stream, config, inactive_threshold=60.0)
            name = info.name
        assert name is not None
        sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
        idle_since = time.monotonic()
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=fetch_timeout)
            except asyncio.TimeoutError:  # nats.errors.TimeoutError is one too
                if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                    if (await sub.consumer_info()).num_pending == 0:  # caught up, not just a slow fetch
                        return
                continue
            idle_since = time.monotonic()
            for m in msgs:
                try:
                    ev = UsageEvent.from_json(m.data)
                except Exception:  # noqa: BLE001 - a foreign message on our subjects: skip it for good
                    log.warning("skipping a malformed usage event (stream seq %s)", m.metadata.sequence.stream)
                    await m.term()
                    continue
                yield ev
                await m.ack()
    finally:
        if not durable and name is not None and nc.is_connected:
            try:
                await js.delete_consumer(stream, name)
            except Exception:  # noqa: BLE001 - it expires by itself anyway
                pass
        await nc.close()
