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


# ---- a real gateway over HTTP -------------------------------------------------------------------
class Gateway:
    """A running gateway (uvicorn in a thread, real sockets) plus admin helpers."""

    def __init__(self, srv, settings):
        import httpx

        self.srv = srv
        self.settings = settings
        self.url = srv.url
        self.admin_headers = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
        self.http = httpx.Client(base_url=srv.url, timeout=60)

    def admin(self, method: str, path: str, **kw):
        r = self.http.request(method, path, headers=self.admin_headers, **kw)
        assert r.status_code < 400, (method, path, r.status_code, r.text)
        return r.json()

    def active_key(self, name: str = "tenant", **limits):
        org = self.admin("POST", "/admin/orgs", json={"name": name, "use_case": "tests"})
        self.admin("POST", f"/admin/orgs/{org['id']}/approve")
        key = self.admin("POST", "/admin/keys", json={"org": org["id"]})
        if limits:
            self.admin("POST", "/admin/limits", json={"org": org["id"], **limits})
        return org, key

    @property
    def app(self):
        return self.srv.config.app


@pytest.fixture
def make_gateway(dg_home):
    """Factory: make_gateway(**settings_overrides) → running Gateway; all stopped at teardown."""
    from distillguard.config import ensure_secrets, load_settings
    from distillguard.http.app import create_app
    from distillguard.http.server import ServerThread

    started = []

    def make(**overrides):
        settings = load_settings(**overrides)
        ensure_secrets(settings)
        srv = ServerThread(create_app(settings)).start()
        gw = Gateway(srv, settings)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.http.close()
        gw.srv.stop()


@pytest.fixture
def gateway(make_gateway):
    return make_gateway()
