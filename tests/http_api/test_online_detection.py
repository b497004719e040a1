"""Online detection inside the gateway: live traffic produces per-account signals in the admin API."""

import asyncio
import io
import time

import orjson
import pytest

from distillguard.detect.declared import REVIEW, RING_UNCOVERED, declares_fine_tuning
from distillguard.detect.engine import Detector
from distillguard.sim import scenarios
from distillguard.sim.corpus import SimCorpus
from distillguard.sim.live import run_live


def _ready(gw, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if gw.admin("GET", "/admin/signals")["ready"]:
            return True
        time.sleep(0.2)
    return False


def test_live_traffic_yields_signals_for_every_account(make_gateway):
    gw = make_gateway(trust_forwarded_for=True)
    assert _ready(gw)
    out, labels = io.BytesIO(), io.BytesIO()
    token = gw.settings.admin_token.get_secret_value()
    asyncio.run(run_live(scenarios.get("demo"), 7, gw.url, token, out, labels, corpus=SimCorpus(None, "test")))
    records = [orjson.loads(x) for x in out.getvalue().splitlines()]
    labs = {d["org"]: d for d in (orjson.loads(x) for x in labels.getvalue().splitlines())}
    per_org: dict[str, int] = {}
    for r in records:
        per_org[r["org"]] = per_org.get(r["org"], 0) + 1
    time.sleep(0.5)  # deferred observers run after the answers
    for org, n in per_org.items():
        sig = gw.admin("GET", f"/admin/orgs/{org}/signals")
        assert sig["org"] == org and sig["requests"] == n
    flagged = {a["org"] for a in gw.admin("GET", "/admin/signals")["accounts"] if a["flagged"]}
    harvesters = {o for o, d in labs.items() if d["label"] == "distillation"}
    assert flagged & harvesters, "no harvesting account flagged online"
    for a in gw.admin("GET", "/admin/signals")["accounts"]:
        if a["flagged"]:
            assert a["reasons"], "a flag without reasons"
            # the org's declared purposes come with its signal; fine-tuning asks for an uploads check first
            assert a["purposes"] == labs[a["org"]]["purposes"]
            assert (a["reasons"][0] == REVIEW) == declares_fine_tuning(a["purposes"])
    # cross-account rings on live traffic: the demo's ring of six small harvesting accounts
    assert gw.admin("GET", "/admin/rings")["scanned_at"] is None  # the periodic scan has not run yet (60 s)
    scan = gw.admin("POST", "/admin/rings/scan")
    assert scan["ready"] and scan["scanned_at"] is not None
    assert gw.admin("GET", "/admin/rings") == scan
    assert scan["rings"], "the demo's ring is not found online"
    in_rings = set().union(*(r["flagged_members"] for r in scan["rings"]))
    assert in_rings <= harvesters and in_rings & {o for o, d in labs.items() if d.get("ring")}
    # the accounts' windows hold all their traffic here: the batch detector's rings flag the same accounts
    batch = Detector().run(records)
    assert in_rings == {a.org for a in batch.accounts if a.ring is not None}
    members = {r["ring"]: r["flagged_members"] for r in scan["rings"]}
    declared_members = 0
    for org in in_rings:
        sig = gw.admin("GET", f"/admin/orgs/{org}/signals")
        assert sig["flagged"] and sig["ring"] in members
        if declares_fine_tuning(sig["purposes"]):  # a cover story does not cover undeclared ring mates
            declared_members += 1
            others = [m for m in members[sig["ring"]] if m != org and not declares_fine_tuning(labs[m]["purposes"])]
            assert sig["reasons"][0] == (RING_UNCOVERED.format(ring=sig["ring"], n=len(others)) if others else REVIEW)
    assert declared_members, "the demo's ring has no member claiming fine-tuning: the rule above went unchecked"
    metrics = {line.split()[0]: float(line.split()[1]) for line in gw.http.get("/metrics").text.splitlines()
               if line.startswith("dg_detection_")}
    assert metrics["dg_detection_rings"] == len(scan["rings"])
    assert metrics["dg_detection_accounts"] == len(per_org) and metrics["dg_detection_errors"] == 0
    assert metrics["dg_detection_ring_scan_seconds"] > 0


def test_the_gateway_scans_for_rings_on_its_own(make_gateway):
    gw = make_gateway(detection_ring_interval_s=0.2)
    assert _ready(gw)
    deadline = time.time() + 30
    while gw.admin("GET", "/admin/rings")["scanned_at"] is None and time.time() < deadline:
        time.sleep(0.1)
    first = gw.admin("GET", "/admin/rings")["scanned_at"]
    assert first is not None, "no periodic ring scan ran"
    time.sleep(0.6)
    assert gw.admin("GET", "/admin/rings")["scanned_at"] > first  # and it keeps running
    off = make_gateway(detection_ring_interval_s=0)
    assert _ready(off)
    time.sleep(0.5)
    assert off.admin("GET", "/admin/rings") == {"rings": [], "scanned_at": None, "ready": True}


def test_long_ring_scans_are_spaced_out():
    from distillguard.http.app import SCAN_SHARE, scan_pause

    assert scan_pause(60.0, 0.0) == 60.0 and scan_pause(60.0, 5.0) == 60.0
    assert scan_pause(60.0, 10.0) == pytest.approx(90.0)  # a 10 s scan, then 90 s without: a tenth of the time
    assert scan_pause(0.2, 1.0) / (scan_pause(0.2, 1.0) + 1.0) == pytest.approx(1.0 - SCAN_SHARE)
