"""Health, readiness, metrics, the OpenAPI document and log redaction."""

import logging


def test_health_ready_metrics(gateway):
    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    r = gateway.http.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"
    org, key = gateway.active_key("metrics")
    gateway.http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key['key']}"},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    gateway.http.post("/v1/chat/completions", json={})
    text = gateway.http.get("/metrics").text
    assert 'dg_requests_total{endpoint="/v1/chat/completions",status="200"} 1.0' in text
    assert 'dg_requests_total{endpoint="/v1/chat/completions",status="401"} 1.0' in text
    assert "dg_tokens_total" in text and "dg_request_duration_seconds_bucket" in text


def test_readyz_reports_a_dead_redis(make_gateway):
    g = make_gateway(redis_url="redis://127.0.0.1:1/0")
    r = g.http.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("error")


def test_openapi_document(gateway):
    doc = gateway.http.get("/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/admin/orgs"):
        assert path in doc["paths"]
    ref = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    assert "messages" in doc["components"]["schemas"][name]["properties"]
    assert "ChatMessage" in doc["components"]["schemas"]


def test_logs_redact_keys_and_tokens(capsys):
    from distillguard.access.keys import generate_key
    from distillguard.logs import configure, get_logger

    configure("INFO", json=True)
    key = generate_key()
    get_logger("t").info("auth attempt", authorization=f"Bearer {key}", note=f"client sent {key}")
    logging.getLogger("plain").warning("header was Bearer %s", key)
    err = capsys.readouterr().err
    assert key not in err and "[redacted]" in err
    logging.getLogger().handlers.clear()
