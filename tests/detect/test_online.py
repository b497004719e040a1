import random

from distillguard.detect.online import OnlineDetector
from distillguard.ledger.record import LedgerRecord

from . import traffic as T


def as_ledger(r):
    return LedgerRecord(id=r["id"], ts=r["ts"], endpoint=r["endpoint"], status=200, org=r["org"], key=r["key"],
                        ip=r["ip"], user_agent=r["user_agent"], request=r["request"],
                        response_text=r["response"]["text"], prompt_tokens=r["usage"]["prompt_tokens"],
                        completion_tokens=r["usage"]["completion_tokens"])


def test_online_flags_a_harvester_and_not_a_chat_user():
    rng = random.Random(3)
    det = OnlineDetector(window=400)
    recs = sorted(T.harvester("h", 500, rng) + T.chatter("c", 500, rng), key=lambda r: r["ts"])
    for r in recs:
        det.observe(as_ledger(r))
    h, c = det.signals("h"), det.signals("c")
    assert h["flagged"] and h["label"] == "distillation" and h["reasons"] and h["requests"] == 500
    assert not c["flagged"] and c["label"] == "benign"
    assert [s["org"] for s in det.flagged()] == ["h"]
    assert det.signals("unknown") is None


def test_observe_never_raises():
    det = OnlineDetector()
    det.observe(None)
    det.observe({"org": "x", "request": "garbage", "ts": "not a number"})
    det.observe(LedgerRecord(id="r", ts=1.0, endpoint="/v1/embeddings", status=500, org="y"))
    assert det.errors >= 1
    assert det.signals("y")["flagged"] is False


def test_a_ring_scan_flags_small_accounts_together_and_nothing_benign(population):
    """Twelve small accounts sharing one harvesting scaffold: few are flagged on their own; the ring scan finds and
    flags them together, with the ring's reasons, and flags no benign account or evaluator."""
    recs, labels = population
    det = OnlineDetector()
    for r in recs:
        det.observe(r)
    members = sorted(o for o in labels if o.startswith("member"))
    assert len(members) == 12
    alone = {m for m in members if det.signals(m)["flagged"]}
    assert len(alone) <= 3, "the members are meant to be small alone"
    assert det.rings() == [] and det.last_ring_scan is None

    found = det.scan_rings()
    assert det.last_ring_scan is not None
    assert found and all(set(r.ring.members) <= set(members) for r in found)  # by scaffold, by topic profile
    assert set().union(*(r.ring.members for r in found)) == set(members)
    ids = [r.ring.id for r in found]
    sigs = {o: det.signals(o) for o in labels}
    caught = [m for m in members if sigs[m]["flagged"]]
    assert len(caught) >= 11 and len(set(caught) - alone) >= 8  # most of them only through the ring
    for m in caught:
        s = sigs[m]
        assert s["ring"] in ids and s["label"] == "distillation" and s["score"] >= det.ring_threshold
        assert m in det.ring_members(s["ring"])
        assert any(r.startswith("ring members:") for r in s["reasons"]) and any("req_" in r for r in s["reasons"])
    for o, lab in labels.items():
        if lab != "distillation":
            assert not sigs[o]["flagged"] and sigs[o]["ring"] is None, o
    assert det.ring_members("ring-99") == []
    assert [r["ring"] for r in det.rings()] == ids
    assert {s["org"] for s in det.flagged()} >= set(caught)


def test_a_ring_scan_forgets_a_ring_whose_traffic_left_the_windows(population):
    """Rings come from the accounts' recent traffic (their two windows): once the members' windows have moved on to
    other traffic, the next scan no longer flags them."""
    recs, _ = population
    det = OnlineDetector(window=60)
    for r in recs:
        det.observe(r)
    assert det.scan_rings(), "the ring is found in the members' windows"
    rng = random.Random(11)
    for k in range(12):  # each member now chats, two full windows' worth
        for r in T.chatter(f"member{k:03d}", 130, rng, start=T.T0 + 30 * 86400):
            det.observe(r)
    assert det.scan_rings() == []
    assert not any(det.signals(f"member{k:03d}")["flagged"] for k in range(12))


def test_observing_while_a_ring_scan_runs_loses_nothing(population):
    import threading

    recs, _ = population
    det = OnlineDetector()
    half = len(recs) // 2
    for r in recs[:half]:
        det.observe(r)
    scans = []
    t = threading.Thread(target=lambda: scans.extend(det.scan_rings() for _ in range(3)))
    t.start()
    for r in recs[half:]:
        det.observe(r)
    t.join()
    assert det.errors == 0
    counts: dict[str, int] = {}
    for r in recs:
        counts[r["org"]] = counts.get(r["org"], 0) + 1
    assert all(det.signals(o)["requests"] == n for o, n in counts.items())
    assert det.scan_rings()
