"""The usage event itself: what it carries, what it never carries, subjects, URL redaction."""

from __future__ import annotations

import orjson
import pytest

from distillguard.events import UsageEvent, redact_url, subject_for, subject_token

from .conftest import make_record


def test_event_has_usage_fields_and_no_body_text_or_client_data() -> None:
    rec = make_record(7, error_code="upstream_timeout", status=504)
    ev = UsageEvent.from_record(rec)
    d = orjson.loads(ev.to_json())
    assert d == {
        "v": 1, "id": rec.id, "ts": rec.ts, "org": "org_a", "key": "key_a", "project": "proj_1",
        "model": "gpt-4o-mini", "endpoint": "/v1/chat/completions", "status": 504,
        "prompt_tokens": 17, "completion_tokens": 27, "latency_ms": 19.5, "replica": "r1",
        "error_code": "upstream_timeout",
    }
    raw = ev.to_json()
    for leaked in (b"BODY-MARKER", b"TEXT-MARKER", b"203.0.113.7", b"OpenAI/Python", b"messages"):
        assert leaked not in raw


def test_json_round_trip_and_forward_compatible() -> None:
    ev = UsageEvent.from_record(make_record(1, org=None, key=None, project=None, latency_ms=None))
    assert UsageEvent.from_json(ev.to_json()) == ev
    newer = {**ev.to_dict(), "v": 2, "something_new": [1, 2]}
    assert UsageEvent.from_json(orjson.dumps(newer)) == ev
    with pytest.raises(ValueError):
        UsageEvent.from_json(b"[1, 2]")


def test_record_without_id_is_refused() -> None:
    with pytest.raises(ValueError):
        UsageEvent.from_record(make_record(1, id=""))


@pytest.mark.parametrize(
    ("org", "token"),
    [("org_9f2", "org_9f2"), (None, "anonymous"), ("", "anonymous"), ("a.b c*>", "a_b_c__"), ("ö-x", "_-x")],
)
def test_subject_token_is_one_safe_nats_token(org: str | None, token: str) -> None:
    assert subject_token(org) == token
    assert subject_for("dg.usage", org) == f"dg.usage.{token}"


def test_redact_url_hides_credentials() -> None:
    assert redact_url("nats://alice:hunter2@10.0.0.5:4222") == "nats://***@10.0.0.5:4222"
    assert redact_url("nats://s3cr3tt0ken@host") == "nats://***@host"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert "pw" not in redact_url("nats://u:pw@a:1,nats://u:pw@b:2")
