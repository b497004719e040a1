"""The ASGI application: wiring of the domain services into FastAPI (``create_app``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .. import __version__
from ..config import Settings, load_settings
from ..errors import GatewayError, InvalidRequest, NotFound
from ..gateway import Gateway, RequestContext
from ..gateway.deferred import Deferred
from ..ledger.store import LedgerStore
from ..ledger.factory import writer_from_settings
from ..limits.factory import make_limiter
from ..services import _redis_url, make_watcher, open_store
from ..upstreams.registry import Upstreams
from . import admin, ops, public
from .body import from_validation_error
from .metrics import Metrics
from .middleware import GatewayMiddleware
from .responses import error_response
from .schemas import ADMIN_MODELS, PUBLIC_MODELS

log = logging.getLogger("distillguard.http")


SCAN_SHARE = 0.1  # at most this share of the time goes to ring scans: the pause after one is ≥ 9× its duration


def scan_pause(every: float, last: float) -> float:
    """Seconds to wait before the next ring scan: ``every``, or longer when the last scan took ``last`` seconds."""
    return max(every, last * (1.0 - SCAN_SHARE) / SCAN_SHARE)


async def _scan_rings(online: Deferred, every: float) -> None:
    """Cross-account rings on live traffic: ``OnlineDetector.scan_rings`` every ``every`` seconds, in a worker thread
    (it clusters copies of the accounts' windows, off the event loop, but its Python parts share the interpreter
    with the requests), and less often when scans grow long (``SCAN_SHARE``)."""
    while True:
        await asyncio.sleep(scan_pause(every, online.target.ring_scan_seconds if online.target is not None else 0.0))
        if online.target is None:
            continue
        try:
            await asyncio.to_thread(online.target.scan_rings)
        except Exception:  # noqa: BLE001 - a failed scan leaves the last rings in place, never stops the gateway
            log.exception("online ring scan failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        watcher = make_watcher(settings, store.engine)
        store.access.watcher = watcher
        await watcher.start()
        limiter = make_limiter(_redis_url(settings))
        upstreams = Upstreams(settings)
        await upstreams.warm()  # build or load the replay index before the first request
        await asyncio.to_thread(_load_tokenizers, settings)  # ~0.2 s each: not on a request
        writer = writer_from_settings(settings, LedgerStore(store.engine))
        writer.start()
        metrics = Metrics(writer)
        observers = [metrics.observe]
        events = None
        if settings.nats_url:  # usage event stream; an unreachable server fails the start, like the database
            from ..events import NatsUsagePublisher

            events = NatsUsagePublisher(settings.nats_url, stream=settings.nats_stream,
                                        subject_prefix=settings.nats_subject_prefix)
            await events.start()
            metrics.track_events(events)
            observers.append(events.observe)
        online = None
        if settings.detection:
            def build() -> Any:
                from ..detect.online import OnlineDetector

                return OnlineDetector(target_fpr=settings.detection_target_fpr)

            online = Deferred(build)
            await online.start()
            observers.append(online)
            metrics.track_detection(online)
        ring_scans = None
        if online is not None and settings.detection_ring_interval_s > 0:
            ring_scans = asyncio.get_running_loop().create_task(_scan_rings(online, settings.detection_ring_interval_s))
        marker = None
        if settings.watermark:
            from ..watermark import Watermarker

            assert settings.secret is not None
            marker = Watermarker(settings.secret.get_secret_value())
        gateway = Gateway(settings, store.access, limiter, upstreams, writer, observers=observers, marker=marker)
        # Everything loaded so far (libraries, indexes, tokenizers) lives as long as the process: move it out of
        # the collector's sight, or each full collection walks it all and stalls requests (~100 ms, benchmark).
        gc.collect()
        gc.freeze()
        assert settings.admin_token is not None
        app.state.admin_token = settings.admin_token.get_secret_value()
        app.state.engine = store.engine
        app.state.redis_url = _redis_url(settings)
        app.state.ledger = writer
        app.state.metrics = metrics
        app.state.gateway = gateway
        app.state.detector = online
        try:
            yield
        finally:
            if ring_scans is not None:
                ring_scans.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ring_scans
            await gateway.drain()
            if events is not None:
                await events.aclose()
            if online is not None:
                await online.aclose()
            await asyncio.to_thread(writer.close)
            await upstreams.aclose()
            await limiter.aclose()
            await watcher.aclose()

    app = FastAPI(
        title="distillguard",
        version=__version__,
        summary="OpenAI-compatible API gateway that enforces terms of use",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.include_router(public.router)
    app.include_router(admin.router)
    app.include_router(ops.router)
    _install_error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    def on_reject(scope: dict[str, Any], rid: str, err: GatewayError) -> None:
        gw: Gateway | None = getattr(app.state, "gateway", None)
        if gw is None or not str(scope.get("path", "")).startswith("/v1/"):
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        client = scope.get("client")
        ctx = RequestContext(
            endpoint=scope["path"], authorization=headers.get("authorization"),
            ip=client[0] if client else None, user_agent=headers.get("user-agent"), request_id=rid,
        )
        gw.record_failure(ctx, err)

    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.max_body_bytes, on_reject=on_reject)
    return app


def _load_tokenizers(settings: Settings) -> None:
    from .. import tokens

    for route in settings.models:
        tokens.encoding_for(route.name, route.encoding)


def _ctx_for(request: Request) -> RequestContext:
    ctx = getattr(request.state, "ctx", None)
    if ctx is None:
        ctx = public.context(request, request.url.path)
    return ctx


def _respond(request: Request, err: GatewayError) -> Response:
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    rid = request.scope.get("state", {}).get("request_id")
    if gw is not None and request.url.path.startswith("/v1/"):
        ctx = _ctx_for(request)
        body = getattr(request.state, "body", None)
        try:
            gw.record_failure(ctx, err, body)
        except Exception:  # noqa: BLE001
            log.exception("could not record failed request")
    return error_response(err, rid)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _respond(request, from_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            err: GatewayError = NotFound(
                f"Unknown request URL: {request.method} {request.url.path}. Please check the URL for typos.",
                code="unknown_url",
            )
        elif exc.status_code == 405:
            err = InvalidRequest(f"Method {request.method} is not allowed for {request.url.path}.",
                                 code="method_not_allowed", status=405)
        else:
            err = GatewayError(str(exc.detail), status=exc.status_code, type="invalid_request_error", code=None)
        return _respond(request, err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        err = GatewayError("The server had an error while processing your request. Sorry about that!",
                           status=500, type="server_error", code="internal_error")
        return _respond(request, err)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in [*PUBLIC_MODELS, *ADMIN_MODELS]:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            comps.setdefault(name, sub)
        comps[model.__name__] = js
    schema["components"]["schemas"]["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
    }
    app.openapi_schema = schema
    return schema
