"""Shared fixtures: isolated DG_HOME, and the machine's real Postgres and Redis.

Service URLs come from DG_TEST_POSTGRES_URL / DG_TEST_REDIS_URL with the machine defaults. Under CI
(CI=true) a missing service fails the test; locally it skips with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get("DG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(what: str, err: BaseException) -> None:
    msg = f"{what} unavailable: {err!r}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI=true: services are required)")
    pytest.skip(msg)


@pytest.fixture
def dg_home(tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh DG_HOME for the test, with no DG_* leaking in from the environment."""
    for k in list(os.environ):
        if k.startswith("DG_") and not k.startswith("DG_TEST_") and k != "DG_TIKTOKEN_CACHE":
            monkeypatch.delenv(k, raising=False)
    home = tmp_path / "dg_home"
    home.mkdir()
    monkeypatch.setenv("DG_HOME", str(home))
    yield str(home)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty Postgres database for one test (dropped afterwards)."""
    import sqlalchemy as sa

    name = "dg_t_" + uuid.uuid4().hex[:12]
    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001
        service_missing("PostgreSQL at " + POSTGRES_URL, e)
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis URL; keys written by a test should use the `redis_prefix` fixture."""
    import redis

    try:
        r = redis.Redis.from_url(REDIS_URL)
        r.ping()
    except Exception as e:  # noqa: BLE001
        service_missing("Redis at " + REDIS_URL, e)
    yield REDIS_URL
    r.close()


@pytest.fixture
def redis_prefix(redis_url) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted after the test."""
    import redis

    prefix = f"dgtest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    r = redis.Redis.from_url(redis_url)
    for k in r.scan_iter(match=prefix + "*", count=1000):
        r.delete(k)
    r.close()
