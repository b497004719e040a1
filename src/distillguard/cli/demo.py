"""``distillguard demo``: the embedded default end to end (SQLite, in-process limits, replay upstream).

Starts the gateway on a free local port, sets up an account through the admin API as an operator
would, sends real requests over HTTP, shows limits and enforcement answering, and exports the ledger.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import httpx
import typer
from rich.console import Console
from rich.table import Table

from ..config import ensure_secrets, load_settings
from ..http.app import create_app
from ..http.server import ServerThread
from ..upstreams.corpus import load_corpus


def demo(
    home: Optional[Path] = typer.Option(None, help="State directory for the demo (default: DG_HOME)."),
    requests_: int = typer.Option(24, "--requests", help="Chat requests to send."),
) -> None:
    """Run the gateway on the embedded default and drive it over HTTP."""
    console = Console()
    if home is not None:
        os.environ["DG_HOME"] = str(home)
    settings = load_settings()
    ensure_secrets(settings)
    assert settings.admin_token is not None
    admin = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    prompts = _prompts(settings.corpus_dir, requests_)
    console.rule("[bold]distillguard demo[/bold] — embedded default: SQLite ledger, in-process limits, replay upstream")
    with ServerThread(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        console.print(f"gateway on {srv.url}   state in {settings.home}")
        org = _ok(http.post("/admin/orgs", headers=admin, json={
            "name": "Acme Support Bot", "use_case": "customer support chat", "purposes": ["chat"]}))
        key = _ok(http.post("/admin/keys", headers=admin, json={"org": org["id"], "name": "demo"}))
        user = {"Authorization": f"Bearer {key['key']}"}
        r = http.post("/v1/chat/completions", headers=user, json=_chat(prompts[0]))
        console.print(f"before approval → HTTP {r.status_code} {r.json()['error']['code']}")
        _ok(http.post(f"/admin/orgs/{org['id']}/approve", headers=admin))
        table = Table(title="chat completions through the gateway (replay upstream)")
        for col in ("#", "prompt", "answer", "tokens", "remaining req"):
            table.add_column(col, overflow="fold")
        for i, p in enumerate(prompts):
            r = http.post("/v1/chat/completions", headers=user, json=_chat(p, max_tokens=120))
            body = r.json()
            ans = body["choices"][0]["message"]["content"] if r.status_code == 200 else body["error"]["message"]
            table.add_row(str(i + 1), p[:60].replace("\n", " "), ans[:70].replace("\n", " "),
                          str(body.get("usage", {}).get("total_tokens", "-")),
                          r.headers.get("x-ratelimit-remaining-requests", "-"))
        console.print(table)
        with http.stream("POST", "/v1/chat/completions", headers=user,
                         json={**_chat(prompts[0], max_tokens=60), "stream": True}) as s:
            chunks = [ln for ln in s.iter_lines() if ln.startswith("data: ")]
        console.print(f"streaming: {len(chunks)} SSE events, last = {chunks[-1]!r}")
        key2 = _ok(http.post("/admin/keys", headers=admin, json={"org": org["id"], "name": "batch"}))
        _ok(http.post("/admin/limits", headers=admin, json={"key": key2["id"], "rpm": 2}))
        user2 = {"Authorization": f"Bearer {key2['key']}"}
        codes = [http.post("/v1/chat/completions", headers=user2, json=_chat(prompts[1], 20)).status_code
                 for _ in range(4)]
        console.print(f"second key limited to 2 RPM → statuses {codes}")
        _ok(http.post(f"/admin/orgs/{org['id']}/suspend", headers=admin, json={"reason": "demo investigation"}))
        r = http.post("/v1/chat/completions", headers=user, json=_chat(prompts[1]))
        console.print(f"suspended → HTTP {r.status_code}: {r.json()['error']['message'][:90]}…")
        _ok(http.post(f"/admin/orgs/{org['id']}/reinstate", headers=admin))
        shown = _ok(http.get(f"/admin/orgs/{org['id']}", headers=admin))
        console.print(f"org status {shown['status']}, tokens today {shown['usage']['daily_tokens']}")
    out = settings.home / "demo-traffic.jsonl"
    from ..ledger.export import export_jsonl
    from ..ledger.store import LedgerStore
    from ..services import open_store

    n = export_jsonl(LedgerStore(open_store(settings).engine), out, org=org["id"])
    console.print(f"ledger: {n} records of this org exported to {out}")
    console.print("next: `distillguard serve` and point the openai SDK at http://127.0.0.1:8000/v1 (see README).")


def _chat(prompt: str, max_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
    if max_tokens:
        body["max_tokens"] = max_tokens
    return body


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise typer.BadParameter(f"{r.request.method} {r.request.url.path} → {r.status_code} {r.text}")
    return r.json()


def _prompts(corpus_dir: Path | None, n: int) -> list[str]:
    """Short first user turns, taken round-robin across the corpus sources (chat, code, maths, tools...)."""
    by_source: dict[str, list[str]] = {}
    for rec in load_corpus(corpus_dir):
        first = next((m["content"] for m in rec.messages if m["role"] == "user"), None)
        if first and 10 < len(first) < 300 and len(by_source.setdefault(rec.source, [])) < n:
            by_source[rec.source].append(first)
    out: list[str] = []
    pools = [v for _, v in sorted(by_source.items())]
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop(0))
    return out or ["Say hello."]
