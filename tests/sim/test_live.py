"""Live mode against a real running gateway: orgs and keys through the admin API, traffic over HTTP,
labels with the gateway's org ids, and the ledger holding exactly the requests sent."""

from __future__ import annotations

import asyncio
import io

import orjson
import pytest

from distillguard.ledger.store import LedgerStore
from distillguard.sim import scenarios
from distillguard.sim.live import check_loopback, run_live


def test_only_loopback_targets():
    assert check_loopback("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    for bad in ("http://10.0.0.5:8000", "https://api.example.com", "ftp://127.0.0.1"):
        with pytest.raises(ValueError):
            check_loopback(bad)


def test_live_run_reaches_the_gateway_ledger(make_gateway, test_corpus):
    gw = make_gateway(trust_forwarded_for=True)  # the simulated client addresses reach the ledger
    out, lab = io.BytesIO(), io.BytesIO()
    summary = asyncio.run(run_live(scenarios.get("tiny"), 1, gw.url, gw.settings.admin_token.get_secret_value(),
                                   out, lab, corpus=test_corpus, concurrency=4, max_requests=60, time_limit_s=120))
    recs = [orjson.loads(x) for x in out.getvalue().splitlines()]
    labels = [orjson.loads(x) for x in lab.getvalue().splitlines()]
    assert summary.records == len(recs) == 30 and summary.accounts == 3
    assert {x["label"] for x in labels} == {"benign", "distillation", "evaluation"}
    orgs = gw.admin("GET", "/admin/orgs")
    orgs = orgs.get("orgs", orgs) if isinstance(orgs, dict) else orgs
    real = {o["id"] for o in orgs}
    assert {x["org"] for x in labels} <= real  # the gateway's own ids
    assert all(r["response"]["status"] == 200 and r["response"]["text"] for r in recs)
    gw.app.state.ledger.flush(30)
    store = LedgerStore(gw.app.state.engine)
    ledger = {rec.id: rec for x in labels for rec in store.iter_records(org=x["org"])}
    assert set(ledger) == {r["id"] for r in recs}
    for r in recs:
        led = ledger[r["id"]]
        assert led.org == r["org"] and led.key == r["key"] and led.status == 200
        assert led.response_text == r["response"]["text"]
        assert led.user_agent == r["user_agent"] and led.ip == r["ip"]
        assert led.prompt_tokens == r["usage"]["prompt_tokens"]
