"""NATS fixtures: the machine's JetStream server (DG_TEST_NATS_URL), a unique stream per test, and a
private nats-server process for outage tests. Under CI (CI=true) a missing server fails the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from conftest import service_missing  # tests/conftest.py: CI=true turns a missing server into a failure
from distillguard.ledger.record import LedgerRecord

NATS_URL = os.environ.get("DG_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _probe(url: str) -> None:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    try:
        await nc.jetstream(timeout=2).account_info()  # JetStream must be enabled
    finally:
        await nc.close()


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The URL of a NATS server with JetStream."""
    try:
        asyncio.run(asyncio.wait_for(_probe(NATS_URL), 5))
    except Exception as e:  # noqa: BLE001
        service_missing("NATS JetStream at " + NATS_URL, e)
    return NATS_URL


@dataclass
class StreamRef:
    url: str
    name: str
    prefix: str

    def publisher_args(self) -> dict[str, Any]:
        return {"url": self.url, "stream": self.name, "subject_prefix": self.prefix}


async def delete_stream(url: str, name: str) -> None:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    try:
        await nc.jetstream().delete_stream(name)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


@pytest.fixture
async def usage_stream(nats_url) -> AsyncIterator[StreamRef]:
    """A unique stream name and subject prefix (streams may not share subjects); deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    ref = StreamRef(nats_url, f"DGT_USAGE_{tag}", f"dgt.{tag}.usage")
    yield ref
    await delete_stream(nats_url, ref.name)


def make_record(i: int, **kw: Any) -> LedgerRecord:
    """A full ledger record, body and text included (they must never reach the event stream)."""
    base: dict[str, Any] = dict(
        id=f"req_{uuid.uuid4().hex[:16]}_{i:06d}",
        ts=1_700_000_000.0 + i,
        endpoint="/v1/chat/completions",
        status=200,
        org="org_a",
        key="key_a",
        project="proj_1",
        model="gpt-4o-mini",
        latency_ms=12.5 + i,
        prompt_tokens=10 + i,
        completion_tokens=20 + i,
        ip="203.0.113.7",
        user_agent="OpenAI/Python 1.54.0",
        request={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"BODY-MARKER {i}"}]},
        response_text=f"TEXT-MARKER {i}",
        finish_reason="stop",
        replica="r1",
    )
    base.update(kw)
    return LedgerRecord(**base)


# ---- a private server that a test may stop and restart ----------------------------------------------
def _nats_server_bin() -> str | None:
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server") if os.access(p, os.X_OK)),
        None,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateNats:
    """nats-server with JetStream on a free loopback port and a store under tmp_path."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.port = _free_port()
        self.store = workdir / "js"
        self.logfile = workdir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store),
               "-l", str(self.logfile)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.logfile.read_text() if self.logfile.exists() else ""
                self.stop()
                raise RuntimeError(f"private nats-server did not start: {log[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def private_nats(tmp_path) -> Iterator[PrivateNats]:
    binary = _nats_server_bin()
    if binary is None:
        service_missing("nats-server binary", FileNotFoundError("nats-server"))
    assert binary is not None
    srv = PrivateNats(binary, tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def wait_until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``cond`` (a correctness wait with a generous deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
