"""Live mode: drive a running gateway over real HTTP with the simulated tenants.

Orgs and keys are created (and orgs approved) through the admin API; each tenant then sends its
requests with its own keys, user agent and ``X-Forwarded-For`` address, with bounded concurrency,
either as fast as that allows or with the simulated clock compressed by ``speed``. Multi-turn
tenants continue with the answers the gateway really gave. The traffic file holds what was observed
(the gateway's request ids, statuses and texts) and the labels file the org ids the gateway assigned.
Only loopback targets are accepted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import orjson

from .behaviours import behaviour
from .corpus import SimCorpus
from .generate import build_tenants, label_of
from .scenarios import Scenario
from .tenant import Behaviour, Reply, Req, Tenant

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class LiveSummary:
    target: str
    records: int = 0
    accounts: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: str | None = None  # "max_requests" | "time_limit" when a bound cut the run short

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "records": self.records, "accounts": self.accounts,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "seconds": self.seconds,
                "stopped": self.stopped}


def check_loopback(url: str) -> str:
    """The base URL without a trailing slash; refuses anything but a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or (parts.hostname or "") not in LOOPBACK:
        raise ValueError(f"live mode only drives a gateway on this machine (loopback), not {url!r}")
    return url.rstrip("/")


class _Run:
    def __init__(self, client: httpx.AsyncClient, concurrency: int, max_requests: int, deadline: float,
                 speed: float | None, t0: float, progress: Progress | None, total: int) -> None:
        self.client = client
        self.sem = asyncio.Semaphore(concurrency)
        self.max_requests = max_requests
        self.deadline = deadline
        self.speed = speed
        self.t0 = t0
        self.wall0 = time.monotonic()
        self.progress = progress
        self.total = total
        self.sent = 0
        self.records: list[dict[str, Any]] = []
        self.stopped: str | None = None

    def _budget_left(self) -> bool:
        if self.sent >= self.max_requests:
            self.stopped = self.stopped or "max_requests"
            return False
        if time.monotonic() >= self.deadline:
            self.stopped = self.stopped or "time_limit"
            return False
        return True

    async def tenant(self, t: Tenant, gen: Behaviour, keys: list[dict[str, Any]], org_id: str) -> None:
        try:
            req: Req = next(gen)
            while self._budget_left():
                if self.speed:
                    delay = self.wall0 + (req.ts - self.t0) / self.speed - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(min(delay, max(self.deadline - time.monotonic(), 0)))
                        if not self._budget_left():
                            break
                self.sent += 1
                async with self.sem:
                    rec, reply = await self.send(t, req, keys[req.key % len(keys)], org_id)
                self.records.append(rec)
                if self.progress:
                    self.progress(len(self.records), self.total)
                req = gen.send(reply)
        except StopIteration:
            return

    async def send(self, t: Tenant, req: Req, key: dict[str, Any], org_id: str) -> tuple[dict[str, Any], Reply]:
        k = req.key % len(t.ident.keys)
        ip = t.ident.ips[k % len(t.ident.ips)]
        ua = t.ident.user_agents[k]
        headers = {"Authorization": f"Bearer {key['key']}", "User-Agent": ua, "X-Forwarded-For": ip}
        ts = time.time()
        start = time.perf_counter()
        stream = bool(req.body.get("stream"))
        try:
            if stream:
                status, rid, text, finish, usage = await self._stream(req, headers)
            else:
                r = await self.client.post(req.endpoint, json=req.body, headers=headers)
                status, rid = r.status_code, r.headers.get("x-request-id", "")
                text, finish, usage = _parse(r, req.endpoint)
        except httpx.HTTPError as e:
            status, rid, text, finish, usage = 599, "", None, None, {}
            finish = type(e).__name__
        latency = time.perf_counter() - start
        rec = {"id": rid, "ts": round(ts, 3), "org": org_id, "key": key["id"], "project": key.get("project"),
               "endpoint": req.endpoint, "ip": ip, "user_agent": ua, "request": req.body,
               "response": {"status": status, "text": text, "finish_reason": finish},
               "usage": {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                         "completion_tokens": int(usage.get("completion_tokens") or 0)},
               "latency_ms": round(latency * 1000.0, 1)}
        return rec, Reply(status, text if status == 200 else None, latency)

    async def _stream(self, req: Req, headers: dict[str, str]) -> tuple[int, str, str | None, str | None, dict[str, Any]]:
        texts: dict[int, list[str]] = {}
        finish: str | None = None
        usage: dict[str, Any] = {}
        async with self.client.stream("POST", req.endpoint, json=req.body, headers=headers) as r:
            rid = r.headers.get("x-request-id", "")
            if r.status_code != 200:
                await r.aread()
                return r.status_code, rid, None, None, {}
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = orjson.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for ch in chunk.get("choices") or []:
                    piece = (ch.get("delta") or {}).get("content") if "delta" in ch else ch.get("text")
                    if piece:
                        texts.setdefault(int(ch.get("index", 0)), []).append(piece)
                    if ch.get("finish_reason") and finish is None:
                        finish = ch["finish_reason"]
        joined = ["".join(texts[i]) for i in sorted(texts)]
        return 200, rid, (joined[0] if len(joined) == 1 else "\n\n".join(joined)) if joined else "", finish, usage


def _parse(r: httpx.Response, endpoint: str) -> tuple[str | None, str | None, dict[str, Any]]:
    if r.status_code != 200:
        return None, None, {}
    body = r.json()
    choices = sorted(body.get("choices") or [], key=lambda c: c.get("index", 0))
    if endpoint.endswith("/chat/completions"):
        texts = [str((c.get("message") or {}).get("content") or "") for c in choices]
    else:
        texts = [str(c.get("text") or "") for c in choices]
    text = texts[0] if len(texts) == 1 else "\n\n".join(texts)
    finish = choices[0].get("finish_reason") if choices else None
    return text, finish, body.get("usage") or {}


async def _admin(client: httpx.AsyncClient, token: str, method: str, path: str, body: Any = None) -> Any:
    r = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if r.status_code >= 400:
        raise RuntimeError(f"admin API {method} {path} → HTTP {r.status_code}: {r.text[:300]}")
    return r.json()


async def run_live(scenario: Scenario, seed: int, target: str, admin_token: str, out: IO[bytes], labels: IO[bytes],
                   *, corpus: SimCorpus, concurrency: int = 16, speed: float | None = None,
                   max_requests: int = 5000, time_limit_s: float = 600.0,
                   progress: Progress | None = None) -> LiveSummary:
    """Create the scenario's tenants on the gateway at ``target``, send their traffic, write what was observed."""
    base = check_loopback(target)
    started = time.monotonic()
    tenants = build_tenants(scenario, seed, corpus)
    summary = LiveSummary(target=base)
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120.0, limits=limits, trust_env=False) as client:
        made: list[tuple[str, Tenant, str, list[dict[str, Any]]]] = []
        for tag, t in tenants:
            org = await _admin(client, admin_token, "POST", "/admin/orgs",
                               {"name": t.ident.name, "use_case": t.ident.use_case, "purposes": t.ident.purposes})
            await _admin(client, admin_token, "POST", f"/admin/orgs/{org['id']}/approve")
            keys = [await _admin(client, admin_token, "POST", "/admin/keys", {"org": org["id"], "name": name})
                    for name in t.ident.key_names]
            made.append((tag, t, org["id"], keys))
        total = min(max_requests, sum(t.spec.requests for _, t in tenants))
        run = _Run(client, concurrency, max_requests, started + time_limit_s, speed, scenario.t0, progress, total)
        await asyncio.gather(*(run.tenant(t, behaviour(t), keys, org_id) for _, t, org_id, keys in made))
    seen: set[str] = set()
    for rec in sorted(run.records, key=lambda r: (r["ts"], r["id"])):
        out.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        summary.statuses[rec["response"]["status"]] = summary.statuses.get(rec["response"]["status"], 0) + 1
        seen.add(rec["org"])
    for tag, t, org_id, _ in made:
        if org_id in seen:
            lab = label_of(tag, t, scenario.name)
            lab["org"] = org_id
            labels.write(orjson.dumps(lab, option=orjson.OPT_APPEND_NEWLINE))
            summary.accounts += 1
    summary.records = len(run.records)
    summary.stopped = run.stopped
    summary.seconds = round(time.monotonic() - started, 3)
    return summary

