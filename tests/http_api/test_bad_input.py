"""Bad input of every kind gets a 4xx OpenAI-style error, never a 500, and is still recorded."""

import httpx
import pytest


@pytest.fixture
def gw(make_gateway):
    g = make_gateway(max_body_bytes=20_000)
    org, key = g.active_key("bad-input")
    g.key = key["key"]
    return g


def _assert_error(r: httpx.Response, status: int, code: str | None = None, param: str | None = None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    assert r.headers["x-request-id"].startswith("req_")


def _post(gw, body=None, content=None, headers=None, path="/v1/chat/completions"):
    h = {"Authorization": f"Bearer {gw.key}"}
    if headers is not None:
        h = headers
    if content is not None:
        return gw.http.post(path, content=content, headers={**h, "content-type": "application/json"})
    return gw.http.post(path, json=body, headers=h)


OK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b"null", b'"text"', b"\xff\xfe"])
def test_malformed_json_is_400(gw, content):
    _assert_error(_post(gw, content=content), 400, "invalid_json")


@pytest.mark.parametrize("patch,param", [
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"content": "x"}]}, "messages.0.role"),
    ({"max_tokens": "many"}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"n": 0}, "n"),
    ({"n": 10_000}, "n"),
    ({"temperature": -1}, "temperature"),
    ({"stream": "yes please"}, "stream"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": 42}, "model"),
])
def test_wrong_types_are_400_with_param(gw, patch, param):
    r = _post(gw, {**OK, **patch})
    _assert_error(r, 400)
    assert r.json()["error"]["param"].startswith(param.split(".")[0])


def test_missing_model_and_messages(gw):
    _assert_error(_post(gw, {"messages": OK["messages"]}), 400, "missing_required_parameter", "model")
    _assert_error(_post(gw, {"model": "gpt-4o-mini"}), 400, "missing_required_parameter", "messages")


def test_unknown_model_is_404(gw):
    _assert_error(_post(gw, {**OK, "model": "gpt-17"}), 404, "model_not_found", "model")


def test_embedding_model_on_chat_is_400(gw):
    _assert_error(_post(gw, {**OK, "model": "text-embedding-3-small"}), 400, "model_not_supported")


def test_huge_body_is_413(gw):
    big = {**OK, "messages": [{"role": "user", "content": "x" * 50_000}]}
    _assert_error(_post(gw, big), 413, "request_too_large")


def test_huge_chunked_body_is_413(gw):
    def gen():
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}]}'

    r = gw.http.post("/v1/chat/completions", content=gen(),
                     headers={"Authorization": f"Bearer {gw.key}", "content-type": "application/json"})
    _assert_error(r, 413, "request_too_large")


@pytest.mark.parametrize("headers,code", [
    ({}, "missing_api_key"),
    ({"Authorization": ""}, "missing_api_key"),
    ({"Authorization": "Bearer"}, "invalid_authorization_header"),
    ({"Authorization": "Token abc"}, "invalid_authorization_header"),
    ({"Authorization": "Bearer dg-" + "Z" * 43}, "invalid_api_key"),
    ({"Authorization": "Bearer " + "\u00e9" * 10}, "invalid_api_key"),
])
def test_missing_or_garbled_authorization_is_401(gw, headers, code):
    h = {k: v.encode("utf-8") for k, v in headers.items()}  # raw bytes, non-ASCII included
    _assert_error(_post(gw, OK, headers=h), 401, code)


def test_auth_is_checked_before_the_body(gw):
    _assert_error(_post(gw, content=b"{garbage", headers={}), 401)


def test_unknown_url_and_wrong_method(gw):
    _assert_error(gw.http.post("/v1/does-not-exist", json={}), 404, "unknown_url")
    _assert_error(gw.http.get("/v1/chat/completions"), 405)


def test_admin_api_refuses_customer_keys(gw):
    r = gw.http.get("/admin/orgs", headers={"Authorization": f"Bearer {gw.key}"})
    _assert_error(r, 401, "invalid_admin_token")
    _assert_error(gw.http.get("/admin/orgs"), 401, "invalid_admin_token")


def test_admin_bad_bodies(gw):
    h = gw.admin_headers
    _assert_error(gw.http.post("/admin/orgs", headers=h, json={"nam": "x"}), 400)
    _assert_error(gw.http.post("/admin/orgs/org_nope/approve", headers=h), 404, "org_not_found")
    _assert_error(gw.http.post("/admin/limits", headers=h, json={"rpm": 3}), 400)
    _assert_error(gw.http.post("/admin/limits", headers=h, content=b"{", ), 400, "invalid_json")


def test_failures_are_in_the_ledger(gw):
    from distillguard.ledger.store import LedgerStore

    _post(gw, content=b"{broken")
    _post(gw, {**OK, "model": "gpt-17"})
    _post(gw, OK, headers={})
    gw.app.state.ledger.flush(10)
    store = LedgerStore(gw.app.state.engine)
    recs = list(store.iter_records())
    statuses = sorted(r.status for r in recs)
    assert statuses == [400, 401, 404]
    by_status = {r.status: r for r in recs}
    assert by_status[404].org is not None and by_status[404].error_code == "model_not_found"
    assert by_status[401].org is None
