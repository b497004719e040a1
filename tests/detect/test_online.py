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
