"""Health, readiness and metrics endpoints (no authentication; expose only on trusted networks)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from .responses import ORJSONResponse

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> Response:
    return ORJSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: database, Redis and ledger writer")
async def readyz(request: Request) -> Response:
    st = request.app.state
    checks: dict[str, str] = {}

    def db() -> None:
        with st.engine.connect() as c:
            c.execute(sa.text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(db), 5)
        checks["database"] = "ok"
    except Exception as e:  # noqa: BLE001
        checks["database"] = f"error: {type(e).__name__}"
    if st.redis_url:
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(st.redis_url, socket_timeout=2)
        try:
            await r.ping()
            checks["redis"] = "ok"
        except Exception as e:  # noqa: BLE001
            checks["redis"] = f"error: {type(e).__name__}"
        finally:
            await r.aclose()
    writer = st.ledger
    checks["ledger_writer"] = "ok" if getattr(writer, "alive", True) else "error: writer stopped"
    ok = all(v == "ok" for v in checks.values())
    return ORJSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
