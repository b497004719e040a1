"""The admin CLI: contract §3 JSON answers, errors, and a running server seeing its changes at once."""

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from distillguard.cli.main import app

runner = CliRunner()


def dg(*args, ok=True):
    r = runner.invoke(app, list(args))
    if ok:
        assert r.exit_code == 0, r.output
    return r


def js(*args):
    r = dg(*args, "--json")
    return json.loads(r.stdout)


def test_org_lifecycle_json_answers(dg_home):
    org = js("org", "create", "Acme", "--use-case", "support bot", "--purpose", "chat", "--purpose", "classification")
    assert org["id"].startswith("org_") and org["name"] == "Acme" and org["status"] == "pending"
    assert org["purposes"] == ["chat", "classification"]
    assert js("org", "approve", org["id"])["status"] == "active"
    key = js("key", "create", "--org", org["id"], "--name", "prod")
    assert set(key) >= {"id", "key", "org"} and key["key"].startswith("dg-") and key["org"] == org["id"]
    shown = js("org", "show", "Acme")  # by unique name too
    assert shown["id"] == org["id"] and [k["id"] for k in shown["keys"]] == [key["id"]]
    assert key["key"] not in json.dumps(shown)  # the secret is shown only once
    lim = js("limits", "set", "--org", org["id"], "--rpm", "60", "--daily-tokens", "1000")
    assert lim["rpm"] == 60 and lim["daily_tokens"] == 1000
    assert js("org", "suspend", org["id"], "--reason", "investigation")["status"] == "suspended"
    assert js("org", "reinstate", org["id"])["status"] == "active"
    out = js("org", "require-changes", org["id"], "--message", "declare purposes")
    assert out["status"] == "requires_changes" and out["status_reason"] == "declare purposes"
    assert js("org", "terminate", org["id"], "--reason", "violation")["status"] == "terminated"
    revoked = js("key", "revoke", key["id"])
    assert revoked["revoked"] is True and "key" not in revoked or revoked.get("key") != key["key"]
    assert [o["id"] for o in js("org", "list")] == [org["id"]]
    other = js("org", "create", "Beta")
    assert js("org", "reject", other["id"], "--reason", "no use case")["status"] == "rejected"


def test_errors_exit_1_with_json_error(dg_home):
    r = dg("org", "approve", "org_missing", "--json", ok=False)
    assert r.exit_code == 1
    assert json.loads(r.stdout)["error"]["code"] == "org_not_found"
    org = js("org", "create", "Gamma")
    js("org", "approve", org["id"])
    js("org", "terminate", org["id"], "--reason", "x")
    r = dg("org", "reinstate", org["id"], "--json", ok=False)
    assert r.exit_code == 1 and json.loads(r.stdout)["error"]["code"] == "invalid_state_transition"
    r = dg("limits", "set", "--rpm", "5", "--json", ok=False)
    assert r.exit_code == 1


def test_cli_changes_take_effect_on_a_running_server(dg_home, make_gateway):
    gw = make_gateway()
    org = js("org", "create", "Live")
    key = js("key", "create", "--org", org["id"])
    h = {"Authorization": f"Bearer {key['key']}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    r = gw.http.post("/v1/chat/completions", json=body, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "application_pending"
    js("org", "approve", org["id"])
    assert gw.http.post("/v1/chat/completions", json=body, headers=h).status_code == 200
    # a separate OS process, as an operator's shell would be
    subprocess.run([sys.executable, "-m", "distillguard.cli.main", "org", "suspend", org["id"], "--reason", "abuse",
                    "--json"], check=True, capture_output=True)
    r = gw.http.post("/v1/chat/completions", json=body, headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    js("org", "reinstate", org["id"])
    js("key", "revoke", key["id"])
    r = gw.http.post("/v1/chat/completions", json=body, headers=h)
    assert r.status_code == 401


def test_ledger_export_writes_traffic_records(dg_home, make_gateway, tmp_path):
    gw = make_gateway()
    org, key = gw.active_key("exporter")
    h = {"Authorization": f"Bearer {key['key']}"}
    for i in range(3):
        gw.http.post("/v1/chat/completions", headers=h, json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": 10})
    gw.app.state.ledger.flush(10)
    out = tmp_path / "traffic.jsonl"
    dg("ledger", "export", "--out", str(out))
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 3
    for r in recs:
        assert r["org"] == org["id"] and r["key"] == key["id"] and r["endpoint"] == "/v1/chat/completions"
        assert r["request"]["messages"][0]["content"].startswith("q") and r["response"]["status"] == 200
        assert r["response"]["text"] and r["usage"]["completion_tokens"] > 0
        assert key["key"] not in json.dumps(r)


def test_help_lists_contract_commands():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("serve", "demo", "org", "key", "limits", "ledger"):
        assert cmd in out


@pytest.mark.slow
def test_demo_runs_end_to_end(dg_home):
    r = subprocess.run([sys.executable, "-m", "distillguard.cli.main", "demo"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "application pending → HTTP 403 application_pending" in out and "approved → HTTP 200" in out
    assert "requests from 17 accounts" in out
    assert "HTTP 403 account_suspended" in out  # what detection flagged is refused on the next request
    traffic = os.path.join(dg_home, "demo", "traffic.jsonl")
    labels = os.path.join(dg_home, "demo", "labels.jsonl")
    assert sum(1 for _ in open(traffic)) > 500 and sum(1 for _ in open(labels)) == 17
    # flagged orgs that declared fine-tuning are held for an uploads check, not suspended
    purposes = {d["org"]: d["purposes"] for d in map(json.loads, open(labels))}
    held = re.search(r"held \d+ flagged accounts that declared fine-tuning for an uploads check: (.*)", out)
    for org in held.group(1).split(", ") if held else []:
        assert "fine-tuning" in purposes[org.strip()], org
    report = open(os.path.join(dg_home, "demo", "report.html")).read()
    assert "<svg" in report and "DEV half" in report and "TEST half" in report  # curves, and the split is stated
