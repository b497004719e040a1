"""The pipeline's watermark plumbing with stand-in markers: streamed == non-streamed, ledger keeps the marked text."""

import json

import pytest

from distillguard.ledger.store import LedgerStore


class Immediate:
    """Marks each piece at once (swapcase)."""

    def apply(self, text, org_id):
        return text.swapcase()

    def stream(self, org_id):
        outer = self

        class S:
            def feed(self, delta):
                return outer.apply(delta, org_id)

            def flush(self):
                return ""

        return S()


class Buffered(Immediate):
    """Holds everything until flush: the extreme case of buffering."""

    def stream(self, org_id):
        buf = []

        class S:
            def feed(self, delta):
                buf.append(delta)
                return ""

            def flush(self):
                out = "".join(buf).swapcase()
                buf.clear()
                return out

        return S()


@pytest.fixture(params=[Immediate, Buffered])
def gw(request, make_gateway):
    g = make_gateway()
    g.app.state.gateway.marker = request.param()
    g.org, key = g.active_key("marked")
    g.h = {"Authorization": f"Bearer {key['key']}"}
    return g


BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Explain what a hash table is."}],
        "max_tokens": 60}


def _stream_text(g, body, key="content"):
    parts = []
    with g.http.stream("POST", body.pop("_path", "/v1/chat/completions"), headers=g.h, json={**body, "stream": True}) as r:
        for ln in r.iter_lines():
            if ln.startswith("data: {"):
                for ch in json.loads(ln[6:]).get("choices", []):
                    piece = ch["delta"].get("content") if "delta" in ch else ch.get("text")
                    parts.append(piece or "")
    return "".join(parts)


def test_marked_streamed_equals_marked_non_streamed(gw):
    plain_gw_marker = gw.app.state.gateway.marker
    full = gw.http.post("/v1/chat/completions", headers=gw.h, json=BODY).json()["choices"][0]["message"]["content"]
    streamed = _stream_text(gw, dict(BODY))
    assert streamed == full
    gw.app.state.gateway.marker = None
    unmarked = gw.http.post("/v1/chat/completions", headers=gw.h, json=BODY).json()["choices"][0]["message"]["content"]
    assert full == plain_gw_marker.apply(unmarked, gw.org["id"]) and full != unmarked


def test_legacy_completions_are_marked_too(gw):
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Write a tagline for an ice cream shop.", "max_tokens": 30}
    full = gw.http.post("/v1/completions", headers=gw.h, json=body).json()["choices"][0]["text"]
    assert _stream_text(gw, {**body, "_path": "/v1/completions"}) == full


def test_ledger_keeps_what_the_client_received(gw):
    full = gw.http.post("/v1/chat/completions", headers=gw.h, json=BODY).json()["choices"][0]["message"]["content"]
    streamed = _stream_text(gw, dict(BODY))
    gw.app.state.ledger.flush(10)
    texts = [r.response_text for r in LedgerStore(gw.app.state.engine).iter_records(org=gw.org["id"])]
    assert texts == [full, streamed]


def test_exempt_orgs_and_models_stay_unmarked(gw):
    marked = gw.http.post("/v1/chat/completions", headers=gw.h, json=BODY).json()["choices"][0]["message"]["content"]
    gw.app.state.gateway.settings.watermark_exempt_orgs.append(gw.org["id"])
    plain = gw.http.post("/v1/chat/completions", headers=gw.h, json=BODY).json()["choices"][0]["message"]["content"]
    assert plain == marked.swapcase()
