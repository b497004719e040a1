"""Export to the traffic format of contracts §1."""

from __future__ import annotations

import io
import json

from distillguard.ledger.export import export_jsonl
from distillguard.ledger.store import LedgerStore

from .conftest import make_record

KEYS = {"id", "ts", "org", "key", "project", "endpoint", "ip", "user_agent", "request", "response", "usage"}
KEYS |= {"latency_ms"}


def test_export_to_path_writes_traffic_records(store: LedgerStore, tmp_path):
    store.write_batch([make_record(i, ts=float(10 - i), org="o1" if i < 3 else "o2") for i in range(5)])
    store.write_batch([make_record(9, status=429, error_code="rate_limit_exceeded", response_text=None)])
    out = tmp_path / "sub" / "traffic.jsonl"
    assert export_jsonl(store, out) == 6
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 6
    assert [d["ts"] for d in lines] == sorted(d["ts"] for d in lines)
    for d in lines:
        assert set(d) >= KEYS
        assert set(d["usage"]) == {"prompt_tokens", "completion_tokens"}
        assert d["request"]["model"] == "gpt-4o-mini"
    first = next(d for d in lines if d["id"] == "req_00000000")
    assert first["response"] == {"status": 200, "text": "answer 0", "finish_reason": "stop"}
    assert first["request"]["messages"][0]["content"] == "question 0"
    err = next(d for d in lines if d["id"] == "req_00000009")
    assert err["response"]["status"] == 429 and err["response"]["error_code"] == "rate_limit_exceeded"


def test_export_filters_and_file_objects(store: LedgerStore):
    store.write_batch([make_record(i, ts=float(i), org="o1" if i % 2 else "o2") for i in range(10)])
    text = io.StringIO()
    assert export_jsonl(store, text, org="o1", since=2, until=8) == 3
    assert [json.loads(x)["ts"] for x in text.getvalue().splitlines()] == [3.0, 5.0, 7.0]
    binary = io.BytesIO()
    assert export_jsonl(store, binary) == 10
    assert len(binary.getvalue().splitlines()) == 10
