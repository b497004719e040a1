"""Pass-through to any OpenAI-compatible server (``route.base_url``, from config only).

One pooled ``httpx.AsyncClient`` per upstream (keep-alive). Non-streaming calls retry connection
failures, 429 and 5xx with exponential backoff (``Retry-After`` honoured, capped); streams retry only
before the first byte. Streams always ask for ``stream_options.include_usage`` so the gateway gets
exact usage. Answers carry the client's model name. The upstream key never appears in logs or errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import orjson

from ..config import ModelRoute
from ..errors import GatewayError, UpstreamError, UpstreamTimeout
from .base import Completion, Endpoint, UpstreamCall

log = logging.getLogger("distillguard.upstreams.openai")

Sleep = Callable[[float], Awaitable[None]]

PATHS: dict[Endpoint, str] = {"chat": "chat/completions", "completions": "completions", "embeddings": "embeddings"}
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CLIENT_FAULT_STATUS = frozenset({400, 404, 409, 413, 415, 422})  # the request itself is at fault
_RETRY_EXC = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_JSON = {"Content-Type": "application/json"}


class OpenAIUpstream:
    """The Upstream protocol over an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        route: ModelRoute,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
        max_connections: int = 512,
    ) -> None:
        if not route.base_url:
            raise ValueError(f"model route {route.name!r}: upstream 'openai' needs a base_url")
        self.route = route
        self.sleep = sleep
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        if api_key is None and route.api_key_env:
            api_key = os.environ.get(route.api_key_env)
            if not api_key:
                log.warning("model %s: environment variable %s is not set; calling upstream without a key",
                            route.name, route.api_key_env)
        headers = {"Accept": "application/json", "User-Agent": "distillguard"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=min(128, max_connections),
                              keepalive_expiry=30.0)
        self._client = httpx.AsyncClient(
            base_url=route.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(route.timeout_s, connect=route.connect_timeout_s),
            limits=limits,
            transport=transport or default_transport(limits),
            follow_redirects=False,
        )

    # ---- Upstream protocol -------------------------------------------------------------------------
    async def complete(self, call: UpstreamCall) -> Completion:
        resp = await self._post(PATHS[call.endpoint], self._payload(call, stream=False))
        body = _json_body(resp)
        body["model"] = _client_model(call)
        choices = sorted((c for c in body.get("choices") or [] if isinstance(c, dict)), key=lambda c: c.get("index", 0))
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return Completion(
            body=body,
            texts=[_choice_text(c, call.endpoint) for c in choices],
            finish_reasons=[c.get("finish_reason") for c in choices],
            prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            completion_tokens=_int_or_none(usage.get("completion_tokens")),
            extra={"upstream_id": body.get("id"), "upstream_request_id": resp.headers.get("x-request-id")},
        )

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        model = _client_model(call)
        wants_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
        resp = await self._open_stream(PATHS[call.endpoint], self._payload(call, stream=True))
        try:
            async for data in _sse_data(resp):
                if data == "[DONE]":
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise UpstreamError("the upstream sent an invalid stream event") from None
                if not isinstance(chunk, dict):
                    raise UpstreamError("the upstream sent an invalid stream event")
                if "error" in chunk:
                    raise _stream_error(chunk["error"])
                chunk["model"] = model
                if not wants_usage and "usage" in chunk and not chunk["usage"]:
                    del chunk["usage"]  # we asked for usage; don't show the client nulls it didn't ask for
                yield chunk
        except httpx.TimeoutException:
            raise UpstreamTimeout("the upstream timed out mid-stream") from None
        except httpx.HTTPError as e:
            raise UpstreamError(f"the upstream connection failed mid-stream ({type(e).__name__})") from None
        finally:
            await resp.aclose()

    async def embed(self, call: UpstreamCall) -> dict[str, Any]:
        resp = await self._post(PATHS["embeddings"], self._payload(call, stream=False))
        body = _json_body(resp)
        body["model"] = _client_model(call)
        return body

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- HTTP ---------------------------------------------------------------------------------------
    def _payload(self, call: UpstreamCall, stream: bool) -> bytes:
        body = dict(call.body)
        body["model"] = self.route.upstream_model or _client_model(call)
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return orjson.dumps(body)

    def _delay(self, attempt: int, resp: httpx.Response | None) -> float:
        base = min(self.backoff_s * (2**attempt), self.max_backoff_s)
        after = _retry_after(resp) if resp is not None else None
        if after is not None:
            return min(after, self.max_backoff_s)
        return base * (0.5 + random.random() / 2)

    async def _retry(self, attempt: int, why: str, resp: httpx.Response | None = None) -> None:
        log.warning("model %s: upstream %s; retry %d/%d", self.route.name, why, attempt + 1, self.route.max_retries)
        await self.sleep(self._delay(attempt, resp))

    async def _post(self, path: str, payload: bytes) -> httpx.Response:
        return await self._send(path, payload, stream=False)

    async def _open_stream(self, path: str, payload: bytes) -> httpx.Response:
        return await self._send(path, payload, stream=True)

    async def _send(self, path: str, payload: bytes, *, stream: bool) -> httpx.Response:
        """POST with retries on connection failures and retryable statuses (for a stream: before its first byte)."""
        headers = {**_JSON, "Accept": "text/event-stream"} if stream else _JSON
        attempt = 0
        while True:
            req = self._client.build_request("POST", path, content=payload, headers=headers)
            try:
                resp = await self._client.send(req, stream=stream)
            except _RETRY_EXC as e:
                if attempt < self.route.max_retries:
                    await self._retry(attempt, f"connection failed ({type(e).__name__})")
                    attempt += 1
                    continue
                raise _transport_error(e) from None
            except httpx.HTTPError as e:
                raise _transport_error(e) from None
            if stream:
                if resp.status_code < 400 and "text/event-stream" in resp.headers.get("content-type", ""):
                    return resp
                try:
                    await resp.aread()
                except httpx.HTTPError as e:
                    raise _transport_error(e) from None
                finally:
                    await resp.aclose()
            if resp.status_code in RETRY_STATUS and attempt < self.route.max_retries:
                await self._retry(attempt, f"returned HTTP {resp.status_code}", resp)
                attempt += 1
                continue
            _raise_for_status(resp, self.route.name)
            if not stream:
                return resp
            body = _json_body(resp)  # a 2xx that is not a stream: an error object, or garbage
            raise _stream_error(body.get("error")) if "error" in body else UpstreamError(
                "the upstream did not answer with an event stream")


# ---- helpers ---------------------------------------------------------------------------------------------
def _client_model(call: UpstreamCall) -> str:
    return str(call.body.get("model") or call.route.name)


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _choice_text(choice: dict[str, Any], endpoint: Endpoint) -> str:
    if endpoint != "chat":
        return str(choice.get("text") or "")
    msg = choice.get("message") or {}
    if msg.get("content"):
        return str(msg["content"])
    calls = msg.get("tool_calls")
    if calls:  # a tool call: the ledger keeps the calls as text
        return json.dumps([c.get("function") for c in calls if isinstance(c, dict)], ensure_ascii=False)
    return ""


def _retry_after(resp: httpx.Response) -> float | None:
    ms = resp.headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    v = resp.headers.get("retry-after")
    if not v:
        return None
    try:
        return max(float(v), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def default_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's API over aiohttp's connection pool: about 4x the throughput of httpcore on the same CPU
    (benchmarks/gateway_bench.py); httpx's own transport if httpx-aiohttp is not installed."""
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:  # pragma: no cover - it is a declared dependency
        return httpx.AsyncHTTPTransport(limits=limits)

    class _Transport(AiohttpTransport):  # type: ignore[misc]
        """httpx-aiohttp maps every aiohttp connection error (a refused connection too) to ConnectTimeout;
        only a real timeout should be one (504), anything else is a connect error (502)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                return await super().handle_async_request(request)
            except httpx.ConnectTimeout as e:
                if isinstance(e.__cause__, asyncio.TimeoutError):
                    raise
                raise httpx.ConnectError(str(e), request=request) from e.__cause__

    return _Transport(limits=limits, trust_env=False)


def _transport_error(e: httpx.HTTPError) -> GatewayError:
    if isinstance(e, httpx.TimeoutException):
        return UpstreamTimeout(f"the upstream timed out ({type(e).__name__})")
    return UpstreamError(f"could not reach the upstream ({type(e).__name__})")


def _error_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return err
    if isinstance(err, str):
        return {"message": err}
    return {}


def _raise_for_status(resp: httpx.Response, model: str) -> None:
    status = resp.status_code
    if status < 400:
        return
    err = _error_object(resp)
    log.warning("model %s: upstream answered HTTP %d (%s)", model, status, err.get("code") or err.get("type") or "-")
    if status in CLIENT_FAULT_STATUS:
        msg = str(err.get("message") or f"the upstream rejected the request (HTTP {status})")
        return_type = str(err.get("type") or "invalid_request_error")
        code = err.get("code")
        param = err.get("param")
        raise GatewayError(msg, status=status, type=return_type, code=str(code) if code is not None else None,
                           param=str(param) if param is not None else None)
    if status in (401, 403):  # our upstream credentials are wrong: not the client's fault
        raise UpstreamError("the upstream rejected the gateway's credentials", code="upstream_auth_failed")
    if status == 429:
        raise UpstreamError("the upstream is rate limiting the gateway; retry later", code="upstream_rate_limited")
    if status in (408, 504):
        raise UpstreamTimeout(f"the upstream timed out (HTTP {status})")
    raise UpstreamError(f"the upstream failed (HTTP {status})")


def _json_body(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        raise UpstreamError("the upstream answered with invalid JSON") from None
    if not isinstance(body, dict):
        raise UpstreamError("the upstream answered with an unexpected JSON value")
    if "error" in body and not body.get("choices") and not body.get("data"):
        raise _stream_error(body["error"])
    return body


def _stream_error(err: Any) -> GatewayError:
    msg = err.get("message") if isinstance(err, dict) else err
    return UpstreamError(f"the upstream failed: {msg}" if msg else "the upstream failed")


async def _sse_data(resp: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined; comments and other fields skipped).

    Tolerates servers that omit the blank line between events when each event is one JSON line.
    """
    pending: list[str] = []
    async for line in resp.aiter_lines():
        if not line:
            if pending:
                yield "\n".join(pending)
                pending = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field != "data":
            continue
        value = value[1:] if value.startswith(" ") else value
        if pending and (value.startswith("{") or value == "[DONE]") and pending[-1].rstrip().endswith("}"):
            yield "\n".join(pending)
            pending = []
        pending.append(value)
    if pending:
        yield "\n".join(pending)
