"""The public OpenAI-compatible API under /v1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ..gateway import Gateway, RequestContext
from ..ledger.record import new_request_id
from ..upstreams.base import Endpoint
from .body import json_body, validate
from .responses import ORJSONResponse, rate_headers
from .schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, body_schema

router = APIRouter(prefix="/v1", tags=["public"])


def context(request: Request, endpoint: str) -> RequestContext:
    h = request.headers
    client = request.client
    fwd = h.get("x-forwarded-for")
    ctx = RequestContext(
        endpoint=endpoint,
        authorization=h.get("authorization"),
        ip=(fwd.split(",")[0].strip() if fwd and request.app.state.gateway.settings.trust_forwarded_for else None)
        or (client.host if client else None),
        user_agent=h.get("user-agent"),
        request_id=request.scope.get("state", {}).get("request_id") or new_request_id(),
    )
    request.state.ctx = ctx
    return ctx


async def _serve(request: Request, endpoint: Endpoint, path: str, model: Any) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = context(request, path)
    gw.authenticate(ctx)  # 401/403 before looking at the body, as OpenAI does
    body = await json_body(request)
    request.state.body = body
    validate(model, body)
    if body.get("stream") and endpoint != "embeddings":
        sr = await gw.open_stream(ctx, endpoint, body)
        headers = rate_headers(sr.rate)
        headers["cache-control"] = "no-cache"
        return StreamingResponse(sr.chunks, media_type="text/event-stream", headers=headers)
    res = await gw.complete(ctx, endpoint, body)
    return ORJSONResponse(res.body, headers=rate_headers(res.rate))


@router.post("/chat/completions", openapi_extra=body_schema(ChatCompletionRequest), summary="Create chat completion")
async def chat_completions(request: Request) -> Response:
    return await _serve(request, "chat", "/v1/chat/completions", ChatCompletionRequest)


@router.post("/completions", openapi_extra=body_schema(CompletionRequest), summary="Create completion (legacy)")
async def completions(request: Request) -> Response:
    return await _serve(request, "completions", "/v1/completions", CompletionRequest)


@router.post("/embeddings", openapi_extra=body_schema(EmbeddingRequest), summary="Create embeddings")
async def embeddings(request: Request) -> Response:
    return await _serve(request, "embeddings", "/v1/embeddings", EmbeddingRequest)


@router.get("/models", summary="List models")
async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = context(request, "/v1/models")
    gw.authenticate(ctx)
    data = [{"id": m.name, "object": "model", "created": 1700000000, "owned_by": "distillguard"} for m in gw.models()]
    return ORJSONResponse({"object": "list", "data": data})


@router.get("/models/{model_id:path}", summary="Retrieve a model")
async def get_model(model_id: str, request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = context(request, "/v1/models")
    gw.authenticate(ctx)
    route = gw.route(model_id, "embeddings" if _is_embedding(gw, model_id) else "chat")
    return ORJSONResponse({"id": route.name, "object": "model", "created": 1700000000, "owned_by": "distillguard"})


def _is_embedding(gw: Gateway, name: str) -> bool:
    return any(m.name == name and m.kind == "embedding" for m in gw.models())
