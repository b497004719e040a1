"""Real server processes: SIGKILL under load loses no answered request; replicas share limits and state."""

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from distillguard.http.server import free_port

pytestmark = pytest.mark.slow


class Proc:
    def __init__(self, env, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.p = subprocess.Popen(
            [sys.executable, "-m", "distillguard.cli.main", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.p.poll() is not None or time.time() > deadline:
                raise RuntimeError("server did not start: " + self.p.stderr.read().decode()[-3000:])
            time.sleep(0.1)

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(timeout=30)


@pytest.fixture
def env(dg_home):
    e = {k: v for k, v in os.environ.items() if not k.startswith("DG_") or k.startswith("DG_TEST_")}
    e["DG_HOME"] = dg_home
    return e


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.kill(signal.SIGTERM)


def _admin(url, home):
    token = open(os.path.join(home, "admin_token")).read().strip()
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _tenant(admin, **limits):
    org = admin.post("/admin/orgs", json={"name": "t"}).json()
    admin.post(f"/admin/orgs/{org['id']}/approve").raise_for_status()
    key = admin.post("/admin/keys", json={"org": org["id"]}).json()
    if limits:
        admin.post("/admin/limits", json={"org": org["id"], **limits}).raise_for_status()
    return org, key


def test_sigkill_under_load_loses_no_answered_request(env, procs, dg_home):
    srv = Proc(env, free_port())
    procs.append(srv)
    with _admin(srv.url, dg_home) as admin:
        org, key = _tenant(admin)
    answered: list[str] = []
    stop = time.time() + 3.0
    killed = False

    def worker(i):
        with httpx.Client(base_url=srv.url, timeout=10, headers={"Authorization": f"Bearer {key['key']}"}) as c:
            while time.time() < stop + 5:
                try:
                    r = c.post("/v1/chat/completions", json={
                        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 8})
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    answered.append(r.headers["x-request-id"])

    with cf.ThreadPoolExecutor(16) as ex:
        futs = [ex.submit(worker, i) for i in range(16)]
        while time.time() < stop:
            time.sleep(0.05)
        srv.kill(signal.SIGKILL)
        killed = True
        for f in futs:
            f.result()
    assert killed and len(answered) > 50

    # a new process on the same state recovers the journal into the ledger
    srv2 = Proc(env, free_port())
    procs.append(srv2)
    srv2.kill(signal.SIGTERM)  # graceful: flushes
    from distillguard.config import load_settings
    from distillguard.ledger.store import LedgerStore
    from distillguard.services import open_store

    store = LedgerStore(open_store(load_settings(home=dg_home)).engine)
    ids = {r.id for r in store.iter_records(org=org["id"])}
    missing = set(answered) - ids
    assert not missing, f"{len(missing)} answered requests missing from the ledger"


def test_two_replicas_share_one_redis_limit_and_state(env, procs, dg_home, redis_url):
    env = {**env, "DG_REDIS_URL": redis_url}
    a, b = Proc(env, free_port()), Proc(env, free_port())
    procs += [a, b]
    with _admin(a.url, dg_home) as admin:
        org, key = _tenant(admin, rpm=20)
    h = {"Authorization": f"Bearer {key['key']}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    codes = []
    with httpx.Client(timeout=30, headers=h) as c:
        for i in range(50):
            srv = a if i % 2 == 0 else b
            codes.append(c.post(srv.url + "/v1/chat/completions", json=body).status_code)
    assert codes.count(200) == 20 and codes.count(429) == 30
    # a suspension made through replica A is effective on replica B at the next request
    with _admin(a.url, dg_home) as admin:
        admin.post("/admin/limits", json={"org": org["id"], "rpm": 10_000}).raise_for_status()
        admin.post(f"/admin/orgs/{org['id']}/suspend", json={"reason": "ring"}).raise_for_status()
    r = httpx.post(b.url + "/v1/chat/completions", json=body, headers=h, timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"


def test_gateway_on_postgres_records_the_ledger_there(env, procs, dg_home, postgres_url):
    env = {**env, "DG_DATABASE_URL": postgres_url}
    srv = Proc(env, free_port())
    procs.append(srv)
    with _admin(srv.url, dg_home) as admin:
        org, key = _tenant(admin)
    h = {"Authorization": f"Bearer {key['key']}"}
    ids = []
    for i in range(5):
        r = httpx.post(srv.url + "/v1/chat/completions", headers=h, timeout=30, json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"tell me about {i}"}]})
        assert r.status_code == 200
        ids.append(r.headers["x-request-id"])
    srv.kill(signal.SIGTERM)
    import sqlalchemy as sa

    eng = sa.create_engine(postgres_url)
    with eng.connect() as c:
        got = {row[0] for row in c.execute(sa.text("SELECT id FROM ledger WHERE org = :o"), {"o": org["id"]})}
    eng.dispose()
    assert set(ids) <= got
