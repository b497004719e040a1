"""Gateway throughput and added latency vs calling the mock upstream directly.

    .venv/bin/python benchmarks/gateway_bench.py [--seconds 10] [--rate 500]

Throughput uses `wrk` when installed (apt-get install wrk), else a Python closed-loop client (which then is the
bottleneck on a 2-core machine; the table says which). Added latency is measured open-loop at a fixed rate with
httpx: p50/p99 through the gateway minus the same percentile direct, non-streaming and streaming first byte.
Prints a table. Targets (issue 4): ≥ 2,000 RPS; p50 added ≤ 1 ms, p99 ≤ 5 ms at 500 RPS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

GW_PORT: dict[str, int] = {}
ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "Say something about foxes."}], "max_tokens": 64}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_servers(home: Path, model_upstream: str) -> tuple[list[subprocess.Popen], str, str, str]:
    mport, gport = free_port(), free_port()
    mock = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "mock_upstream.py"), "--port", str(mport)])
    wait_up(f"http://127.0.0.1:{mport}/", mock)
    cfg = home / "bench.yaml"
    if model_upstream == "openai":
        models = [{"name": "bench-model", "upstream": "openai", "base_url": f"http://127.0.0.1:{mport}/v1", "max_retries": 0}]
    else:
        models = [{"name": "bench-model", "upstream": "replay"}]
    cfg.write_text(json.dumps({"models": models, "org_limits": {"rpm": 10**9, "tpm": 10**12}}))
    env = {**os.environ, "DG_HOME": str(home), "DG_LOG_LEVEL": "WARNING"}
    gw = subprocess.Popen([sys.executable, "-m", "distillguard.cli.main", "serve", "--port", str(gport),
                           "--config", str(cfg)], env=env, stderr=open(home / "gateway.log", "w"))
    wait_up(f"http://127.0.0.1:{gport}/healthz", gw)
    GW_PORT["port"] = gport
    token = (home / "admin_token").read_text().strip()
    admin = httpx.Client(base_url=f"http://127.0.0.1:{gport}", headers={"Authorization": f"Bearer {token}"})
    org = admin.post("/admin/orgs", json={"name": "bench"}).json()
    admin.post(f"/admin/orgs/{org['id']}/approve").raise_for_status()
    key = admin.post("/admin/keys", json={"org": org["id"]}).json()["key"]
    return [mock, gw], f"http://127.0.0.1:{mport}", f"http://127.0.0.1:{gport}", key


def wrk_rps(url: str, key: str, seconds: int, conns: int = 64) -> float | None:
    if not shutil.which("wrk"):
        return None
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write('wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n'
              'wrk.headers["Authorization"] = "Bearer %s"\n' % (json.dumps(BODY), key))
    lua.close()
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-s", lua.name, url + "/v1/chat/completions"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"  warning: {non2xx.group(1)} non-2xx answers from {url}", file=sys.stderr)
    return float(m.group(1)) if m else None


async def py_rps(url: str, key: str, seconds: float, conns: int = 32) -> float:
    done = 0
    stop = time.perf_counter() + seconds
    async with client(url, key, conns) as c:
        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                r = await c.post("/v1/chat/completions", json=BODY)
                done += r.status_code == 200

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(conns)])
        return done / (time.perf_counter() - t0)


async def open_loop(url: str, key: str, rate: float, seconds: float, stream: bool) -> list[float]:
    """Latencies (ms) of requests sent at a fixed rate; for streams, time to the first byte."""
    lat: list[float] = []
    body = {**BODY, "stream": True} if stream else BODY
    async with client(url, key, 200) as c:
        async def one() -> None:
            t0 = time.perf_counter()
            if stream:
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    chunks = r.aiter_raw()
                    await chunks.__anext__()
                    lat.append((time.perf_counter() - t0) * 1000)
                    async for _ in chunks:
                        pass
            else:
                r = await c.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                lat.append((time.perf_counter() - t0) * 1000)

        for _ in range(4):  # warm up: open the connection pools (both hops) and first-use paths
            await asyncio.gather(*[one() for _ in range(64)])
        if url.endswith(str(GW_PORT.get("port"))):
            wait_ledger_drained(url)
        lat.clear()
        tasks = []
        t_start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = t_start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return lat


def wait_ledger_drained(gw_url: str, timeout: float = 120) -> None:
    """Let the ledger writer catch up so one phase's backlog doesn't slow the next."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"^dg_ledger_pending ([\d.e+]+)", httpx.get(gw_url + "/metrics").text, re.M)
        if m and float(m.group(1)) == 0:
            return
        time.sleep(0.2)


def client(url: str, key: str, conns: int) -> httpx.AsyncClient:
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                             transport=AiohttpTransport(limits=limits), timeout=60)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--upstream", choices=["openai", "replay"], default="openai")
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dg-bench-"))
    procs, mock_url, gw_url, key = start_servers(home, a.upstream)
    rows: list[tuple[str, str, str]] = []
    try:
        for stream in (False, True):
            what = "stream first byte" if stream else "non-streaming"
            d = asyncio.run(open_loop(mock_url, key, a.rate, a.seconds, stream))
            g = asyncio.run(open_loop(gw_url, key, a.rate, a.seconds, stream))
            wait_ledger_drained(gw_url)
            for p in (50, 99):
                rows.append((f"{what} p{p} @ {a.rate:.0f} RPS",
                             f"+{pct(g, p) - pct(d, p):.2f} ms added",
                             f"direct {pct(d, p):.2f} ms, gateway {pct(g, p):.2f} ms (n={len(g)})"))
        tool = "wrk" if shutil.which("wrk") else "python client (bottleneck)"
        for name, url in (("mock upstream direct", mock_url), ("through gateway", gw_url)):
            rps = wrk_rps(url, key, int(a.seconds)) if shutil.which("wrk") else asyncio.run(py_rps(url, key, a.seconds))
            rows.append((f"throughput, {name}", f"{rps:,.0f} RPS" if rps else "n/a", tool))
        wait_ledger_drained(gw_url)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
    w = max(len(r[0]) for r in rows)
    print(f"\ngateway benchmark (upstream: {a.upstream}, {os.cpu_count()} cores)")
    print(f"{'measure':<{w}}  {'result':<22}  detail")
    print("-" * (w + 60))
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<22}  {r[2]}")


if __name__ == "__main__":
    main()
