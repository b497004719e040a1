"""``distillguard demo``: the embedded default end to end (SQLite, in-process limits, replay upstream).

Starts the gateway on a free local port, walks one account through Limited Access, drives the
``demo`` scenario's simulated tenants (benign, harvesters, a sybil ring, evaluators) over real HTTP,
runs detection on the traffic the gateway recorded, suspends what it flags (holding flagged orgs that declared
fine-tuning for an uploads check instead), and shows the refusal.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Optional

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import ensure_secrets, load_settings
from ..http.app import create_app
from ..http.server import ServerThread


def demo(
    home: Optional[Path] = typer.Option(None, help="State directory for the demo (default: DG_HOME)."),
    seed: int = typer.Option(7, help="Seed of the simulated tenants."),
    scenario: str = typer.Option("demo", help="Simulator scenario to drive over HTTP."),
) -> None:
    """Run the gateway on the embedded default, drive simulated tenants over HTTP, detect and enforce."""
    from ..detect.declared import annotate as mark_declared
    from ..detect.engine import Detector
    from ..detect.evaluate import evaluate
    from ..detect.model import provenance_note
    from ..sim import scenarios
    from ..sim.corpus import SimCorpus
    from ..sim.live import run_live
    from ..sim.report import write_report
    from .detect import print_report

    console = Console()
    if home is not None:
        os.environ["DG_HOME"] = str(home)
    settings = load_settings(trust_forwarded_for=True)  # the simulated clients' addresses, as a proxy would pass
    ensure_secrets(settings)
    assert settings.admin_token is not None
    token = settings.admin_token.get_secret_value()
    admin = {"Authorization": f"Bearer {token}"}
    out_dir = settings.home / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    traffic, labels_path, report_path = out_dir / "traffic.jsonl", out_dir / "labels.jsonl", out_dir / "report.html"
    console.rule("[bold]distillguard demo[/bold] — embedded default: SQLite ledger, in-process limits, replay upstream")
    with ServerThread(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        console.print(f"gateway on {srv.url}   state in {settings.home}")
        _limited_access(console, http, admin)

        console.rule(f"simulated tenants over HTTP (scenario {scenario!r}, seed {seed})")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress, traffic.open("wb") as out, labels_path.open("wb") as labs:
            task = progress.add_task("requests", total=None)
            summary = asyncio.run(run_live(scenarios.get(scenario), seed, srv.url, token, out, labs,
                                           corpus=SimCorpus(settings.corpus_dir, "test"),
                                           progress=lambda done, n: progress.update(task, completed=done, total=n)))
        console.print(f"{summary.records} requests from {summary.accounts} accounts in {summary.seconds:.1f}s, "
                      f"statuses {summary.to_json()['statuses']}")

        console.rule("detection on the recorded traffic")
        detector = Detector()
        rep = detector.run(orjson.loads(line) for line in traffic.open("rb"))
        labels = {d["org"]: d for d in (orjson.loads(line) for line in labels_path.open("rb"))}
        metrics = evaluate(rep, labels)
        declared = {o["id"]: o["purposes"] for o in _ok(http.get("/admin/orgs", headers=admin))["orgs"]}
        to_check = mark_declared(rep, declared)  # each org's purposes as the gateway stored them
        print_report(rep, metrics)
        write_report(report_path, rep.to_json(metrics)["accounts"], list(labels.values()),
                     notes=provenance_note(detector.model) + " This run: the demo scenario, test half, live over HTTP.")

        console.rule("enforcement")
        suspended, held = [], []
        for a in (a for a in rep.accounts if a.flagged):
            if a.org in to_check:  # declared fine-tuning (allowed for the provider's own models): uploads first
                held.append(a.org)
                continue
            http.post(f"/admin/orgs/{a.org}/suspend", headers=admin, json={"reason": (a.reasons or ["flagged"])[0]})
            suspended.append(a.org)
        console.print(f"suspended {len(suspended)} flagged accounts pending investigation")
        if held:
            console.print(f"held {len(held)} flagged accounts that declared fine-tuning for an uploads check: "
                          f"{', '.join(held)}")
        if suspended:
            key = _ok(http.post("/admin/keys", headers=admin, json={"org": suspended[0], "name": "probe"}))
            r = http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key['key']}"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
            console.print(f"a request from {suspended[0]} now → HTTP {r.status_code} {r.json()['error']['code']}: "
                          f"{r.json()['error']['message'][:100]}…")
    console.rule("where to look next")
    console.print(f"traffic: {traffic}\nlabels:  {labels_path}\nreport:  {report_path}  (ROC curves, score histograms)")
    console.print("`distillguard detect --input ... --labels ... --json`, `distillguard org list`, "
                  "`distillguard serve` + the openai SDK (see README).")


def _limited_access(console: Console, http: httpx.Client, admin: dict[str, str]) -> None:
    org = _ok(http.post("/admin/orgs", headers=admin, json={
        "name": "Acme Support", "use_case": "customer support chat", "purposes": ["chat"]}))
    key = _ok(http.post("/admin/keys", headers=admin, json={"org": org["id"], "name": "demo"}))
    user = {"Authorization": f"Bearer {key['key']}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is a hash table?"}], "max_tokens": 40}
    r = http.post("/v1/chat/completions", headers=user, json=body)
    console.print(f"Limited Access: application pending → HTTP {r.status_code} {r.json()['error']['code']}")
    _ok(http.post(f"/admin/orgs/{org['id']}/approve", headers=admin))
    r = http.post("/v1/chat/completions", headers=user, json=body)
    console.print(f"approved → HTTP {r.status_code}, remaining requests {r.headers.get('x-ratelimit-remaining-requests')}:"
                  f" {r.json()['choices'][0]['message']['content'][:70]!r}…")


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise typer.BadParameter(f"{r.request.method} {r.request.url.path} → {r.status_code} {r.text}")
    return r.json()
