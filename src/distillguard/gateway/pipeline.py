"""The gateway pipeline for one request (non-streaming and streaming)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterable, Protocol

import orjson

from .. import tokens
from ..access import AccessService, Principal
from ..config import ModelRoute, Settings
from ..errors import GatewayError, InvalidRequest, NotFound
from ..ledger.record import LedgerRecord
from ..limits.base import Limiter, RateLimitStatus, Reservation, Subject
from ..upstreams.base import Endpoint, UpstreamCall
from . import estimate
from .context import RequestContext
from .marking import StreamMarker, TextMark, mark_completion

log = logging.getLogger("distillguard.gateway")

Observer = Callable[[LedgerRecord], None]


class LedgerSink(Protocol):
    def append(self, record: LedgerRecord) -> None: ...


class UpstreamSource(Protocol):
    def get(self, route: ModelRoute) -> Any: ...


ENDPOINT_PATHS: dict[Endpoint, str] = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}


@dataclass(slots=True)
class Result:
    body: dict[str, Any]
    rate: RateLimitStatus | None


@dataclass(slots=True)
class StreamResult:
    chunks: AsyncIterator[bytes]  # SSE-framed bytes, ending with "data: [DONE]"
    rate: RateLimitStatus | None


class Gateway:
    def __init__(
        self,
        settings: Settings,
        access: AccessService,
        limiter: Limiter,
        upstreams: UpstreamSource,
        ledger: LedgerSink,
        observers: Iterable[Observer] = (),
        marker: TextMark | None = None,
    ) -> None:
        self.settings = settings
        self.access = access
        self.limiter = limiter
        self.upstreams = upstreams
        self.ledger = ledger
        self.observers: list[Observer] = list(observers)
        self.marker = marker
        self._routes = {m.name: m for m in settings.models}
        self._background: set[asyncio.Task[None]] = set()

    # ---- steps -------------------------------------------------------------------------------
    def authenticate(self, ctx: RequestContext) -> Principal:
        ctx.principal = self.access.authenticate(ctx.authorization)
        return ctx.principal

    def route(self, model: Any, endpoint: Endpoint) -> ModelRoute:
        if not isinstance(model, str) or not model:
            raise InvalidRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
        route = self._routes.get(model)
        if route is None:
            raise NotFound(
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        if (endpoint == "embeddings") != (route.kind == "embedding"):
            what = "an embedding" if route.kind == "embedding" else "a chat/completions"
            raise InvalidRequest(
                f"The model `{model}` is {what} model and cannot be used with {ENDPOINT_PATHS[endpoint]}.",
                param="model",
                code="model_not_supported",
            )
        return route

    def marks(self, route: ModelRoute, principal: Principal) -> bool:
        """Whether this answer gets the account's watermark."""
        s = self.settings
        return (self.marker is not None and s.watermark and route.watermark
                and principal.org.id not in s.watermark_exempt_orgs)

    def models(self) -> list[ModelRoute]:
        return list(self._routes.values())

    @staticmethod
    def subjects(p: Principal) -> list[Subject]:
        return [Subject(f"key:{p.key.id}", p.key_limits), Subject(f"org:{p.org.id}", p.org_limits)]

    # ---- non-streaming -------------------------------------------------------------------------
    async def complete(self, ctx: RequestContext, endpoint: Endpoint, body: dict[str, Any]) -> Result:
        principal = ctx.principal or self.authenticate(ctx)
        route = self.route(body.get("model"), endpoint)
        prompt_est = estimate.prompt_tokens(endpoint, body, route)
        reserve = prompt_est + estimate.max_output_tokens(endpoint, body, self.settings.default_max_tokens)
        res = await self.limiter.reserve(self.subjects(principal), reserve)
        upstream = self.upstreams.get(route)
        call = UpstreamCall(route=route, endpoint=endpoint, body=body, request_id=ctx.request_id)
        try:
            if endpoint == "embeddings":
                out = await upstream.embed(call)
                usage = out.get("usage") or {}
                p_tok = int(usage.get("prompt_tokens", prompt_est))
                c_tok, text, finish = 0, None, None
            else:
                comp = await upstream.complete(call)
                if self.marks(route, principal):
                    assert self.marker is not None
                    comp = mark_completion(self.marker, comp, endpoint, principal.org.id)
                out = comp.body
                p_tok = comp.prompt_tokens if comp.prompt_tokens is not None else prompt_est
                c_tok = (
                    comp.completion_tokens
                    if comp.completion_tokens is not None
                    else sum(tokens.count_text(t, route.name, route.encoding) for t in comp.texts)
                )
                text = _join(comp.texts)
                finish = comp.finish_reasons[0] if comp.finish_reasons else None
        except GatewayError as e:
            await self.limiter.release(res)
            self.record_failure(ctx, e, body, route.name)
            raise
        except Exception as e:  # a bug or unexpected upstream behaviour: still release and record
            await self.limiter.release(res)
            err = GatewayError(f"upstream failed: {type(e).__name__}", code="upstream_error", status=502, type="api_error")
            self.record_failure(ctx, err, body, route.name)
            raise err from e
        await self.limiter.reconcile(res, p_tok + c_tok)
        self._record(ctx, 200, body, route.name, p_tok, c_tok, text, finish)
        return Result(out, res.status)

    # ---- streaming -------------------------------------------------------------------------------
    async def open_stream(self, ctx: RequestContext, endpoint: Endpoint, body: dict[str, Any]) -> StreamResult:
        """Everything up to the first upstream chunk happens here, so failures are still plain HTTP errors."""
        principal = ctx.principal or self.authenticate(ctx)
        route = self.route(body.get("model"), endpoint)
        if endpoint == "embeddings":
            raise InvalidRequest("embeddings cannot be streamed", param="stream")
        prompt_est = estimate.prompt_tokens(endpoint, body, route)
        reserve = prompt_est + estimate.max_output_tokens(endpoint, body, self.settings.default_max_tokens)
        res = await self.limiter.reserve(self.subjects(principal), reserve)
        call = UpstreamCall(route=route, endpoint=endpoint, body=body, request_id=ctx.request_id)
        agen = self.upstreams.get(route).stream(call).__aiter__()
        try:
            first: dict[str, Any] | None = await agen.__anext__()
        except StopAsyncIteration:
            first = None
        except GatewayError as e:
            await self.limiter.release(res)
            self.record_failure(ctx, e, body, route.name)
            raise
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        marker = StreamMarker(self.marker, endpoint, principal.org.id) if (
            self.marker is not None and self.marks(route, principal)) else None
        relay = _StreamRelay(self, ctx, endpoint, body, route, res, prompt_est, include_usage, marker)
        return StreamResult(relay.run(first, agen), res.status)

    # ---- records --------------------------------------------------------------------------------
    def record_failure(
        self, ctx: RequestContext, err: GatewayError, body: dict[str, Any] | None = None, model: str | None = None
    ) -> None:
        if ctx.recorded:
            return
        if ctx.principal is None and ctx.authorization:
            try:  # attribute the failure to the account when the key is valid
                ctx.principal = self.access.authenticate(ctx.authorization)
            except GatewayError:
                pass
        if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"][:255]
        self._record(ctx, err.status, body, model, 0, 0, None, None, error_code=err.code)

    def _record(
        self,
        ctx: RequestContext,
        status: int,
        body: dict[str, Any] | None,
        model: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        text: str | None,
        finish_reason: str | None,
        error_code: str | None = None,
    ) -> LedgerRecord:
        p = ctx.principal
        rec = LedgerRecord(
            id=ctx.request_id,
            ts=ctx.started,
            endpoint=ctx.endpoint,
            status=status,
            org=p.org.id if p else None,
            key=p.key.id if p else None,
            project=p.key.project_id if p else None,
            model=model,
            latency_ms=round(ctx.elapsed_ms(), 3),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            request=body if isinstance(body, dict) else None,
            response_text=text,
            finish_reason=finish_reason,
            error_code=error_code,
            replica=self.settings.replica_id,
        )
        self.ledger.append(rec)  # durable (write-ahead journal) before the client gets the answer
        ctx.recorded = True
        for obs in self.observers:
            try:
                obs(rec)
            except Exception:  # noqa: BLE001 - an observer must never break a request
                log.exception("ledger observer failed")
        return rec

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _join(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else "\n\n".join(texts)


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"


class _StreamRelay:
    """Relays upstream chunks as SSE, keeping what was sent, and settles limits + ledger exactly once."""

    def __init__(
        self,
        gw: Gateway,
        ctx: RequestContext,
        endpoint: Endpoint,
        body: dict[str, Any],
        route: ModelRoute,
        res: Reservation,
        prompt_est: int,
        include_usage: bool,
        marker: StreamMarker | None = None,
    ) -> None:
        self.gw, self.ctx, self.endpoint, self.body, self.route = gw, ctx, endpoint, body, route
        self.res, self.prompt_est, self.include_usage = res, prompt_est, include_usage
        self.marker = marker
        self.last: dict[str, Any] = {}
        self.texts: dict[int, list[str]] = {}
        self.finish: dict[int, str] = {}
        self.usage: dict[str, Any] | None = None

    def _take(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """Note a chunk's content; return what to send (None to drop it)."""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
            if not chunk.get("choices"):
                return chunk if self.include_usage else None
            if not self.include_usage:
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
        if self.marker is not None:
            self.marker.chunk(chunk)
        self.last = chunk
        for ch in chunk.get("choices") or ():
            idx = ch.get("index", 0)
            piece = (ch.get("delta") or {}).get("content") if self.endpoint == "chat" else ch.get("text")
            if piece:
                self.texts.setdefault(idx, []).append(piece)
            if ch.get("finish_reason"):
                self.finish[idx] = ch["finish_reason"]
        return chunk

    def _tail_chunk(self) -> dict[str, Any] | None:
        """Text the marker still holds for choices that ended without a finish_reason."""
        if self.marker is None:
            return None
        tails = self.marker.tails()
        if not tails:
            return None
        key = "delta" if self.endpoint == "chat" else None
        choices = []
        for idx, text in sorted(tails.items()):
            self.texts.setdefault(idx, []).append(text)
            choices.append({"index": idx, key: {"content": text}, "finish_reason": None} if key
                           else {"index": idx, "text": text, "finish_reason": None})
        base = {k: v for k, v in self.last.items() if k in ("id", "object", "created", "model", "system_fingerprint")}
        return {**base, "choices": choices}

    def _text(self) -> str:
        return _join(["".join(self.texts[i]) for i in sorted(self.texts)]) if self.texts else ""

    def _settle_counts(self, complete: bool) -> tuple[int, int]:
        if complete and self.usage is not None:
            return int(self.usage.get("prompt_tokens", self.prompt_est)), int(self.usage.get("completion_tokens", 0))
        # what was actually sent (a disconnect or a failure mid-stream charges only that)
        sent = sum(tokens.count_text("".join(v), self.route.name, self.route.encoding) for v in self.texts.values())
        return self.prompt_est, sent

    async def run(self, first: dict[str, Any] | None, agen: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        settled = False
        try:
            chunk = first
            while chunk is not None:
                out = self._take(chunk)
                if out is not None:
                    yield sse(out)
                try:
                    chunk = await agen.__anext__()
                except StopAsyncIteration:
                    chunk = None
            tail = self._tail_chunk()
            if tail is not None:
                yield sse(tail)
            p_tok, c_tok = self._settle_counts(True)
            await self.gw.limiter.reconcile(self.res, p_tok + c_tok)
            self.gw._record(self.ctx, 200, self.body, self.route.name, p_tok, c_tok, self._text(),
                            self.finish.get(0))
            settled = True
            yield DONE
        except GatewayError as e:  # upstream failed mid-stream: tell the client in-band, charge what was sent
            tail = self._tail_chunk()  # text the marker held back still belongs to the client
            p_tok, c_tok = self._settle_counts(False)
            await self.gw.limiter.reconcile(self.res, p_tok + c_tok)
            self.gw._record(self.ctx, 200, self.body, self.route.name, p_tok, c_tok, self._text(),
                            None, error_code=e.code)
            settled = True
            if tail is not None:
                yield sse(tail)
            yield sse(e.body())
        finally:
            if not settled:  # client went away (or we were cancelled): charge only what was sent
                p_tok, c_tok = self._settle_counts(False)
                self.gw._record(self.ctx, 200, self.body, self.route.name, p_tok, c_tok, self._text(),
                                None, error_code="client_disconnected")
                # awaiting here could be cancelled by the server's cancel scope: settle in a task of its own
                self.gw.spawn(self.gw.limiter.reconcile(self.res, p_tok + c_tok))
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                self.gw.spawn(aclose())
