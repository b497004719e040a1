"""Pure-ASGI middleware: request ids on every answer and the request-size limit.

Requests larger than ``max_body_bytes`` are refused with 413 before the app sees them (by
Content-Length, or while reading a chunked body) and reported to ``on_reject`` so the ledger
still gets a record.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..errors import BodyTooLarge, GatewayError
from ..ledger.record import new_request_id
from .responses import error_response

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        on_reject: Callable[[Scope, str, GatewayError], None] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = _content_length(scope)
            if length is not None and length > self.max_body:
                await self._reject(scope, rid, send)
                return
            if length is None:  # chunked: buffer up to the limit
                chunks: list[bytes] = []
                size = 0
                more = True
                while more:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return
                    body = msg.get("body", b"")
                    size += len(body)
                    if size > self.max_body:
                        await self._reject(scope, rid, send)
                        return
                    chunks.append(body)
                    more = msg.get("more_body", False)
                buffered = b"".join(chunks)
                sent = False

                async def replay() -> dict[str, Any]:
                    nonlocal sent
                    if not sent:
                        sent = True
                        return {"type": "http.request", "body": buffered, "more_body": False}
                    return await receive()

                await self.app(scope, replay, send_with_id)
                return
        await self.app(scope, receive, send_with_id)

    async def _reject(self, scope: Scope, rid: str, send: Send) -> None:
        err = BodyTooLarge(f"Request body too large: the limit is {self.max_body} bytes.", code="request_too_large")
        if self.on_reject is not None:
            try:
                self.on_reject(scope, rid, err)
            except Exception:  # noqa: BLE001 - recording must not turn a 413 into a 500
                pass
        await error_response(err, rid)(scope, _empty_receive, send)


def _content_length(scope: Scope) -> int | None:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


async def _empty_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
