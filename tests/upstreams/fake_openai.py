"""A small OpenAI-compatible server for the pass-through tests, run by uvicorn on 127.0.0.1 in a thread.

``FakeOpenAI.mode`` picks its behaviour; ``requests`` records what it received.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

WORDS = ["Hello", " from", " the", " upstream", "."]


def _err(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status)


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()  # mode "gated": the stream waits for it after the first chunk
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
        ])
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.base_url = ""

    def reset(self) -> None:
        self.mode = "ok"
        self.requests.clear()
        self.release.clear()

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.server.force_exit = True  # don't wait for the deliberately slow requests
        if self.thread is not None:
            self.thread.join(10)

    # ---- behaviour ---------------------------------------------------------------------------------------
    async def _common(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body,
                              "peer": request.client.port if request.client else None})
        mode = self.mode
        if mode == "500":
            return body, _err(500, "The server had an error", "server_error")
        if mode == "flaky" and len(self.requests) == 1:
            return body, Response(b'{"error": {"message": "overloaded"}}', 503,
                                  headers={"retry-after": "0.5", "content-type": "application/json"})
        if mode == "400":
            return body, _err(400, "Invalid 'messages[0].role': bad role.", "invalid_request_error",
                              "invalid_value", "messages[0].role")
        if mode == "401":
            return body, _err(401, "Incorrect API key provided: sk-upst***cret.", "invalid_request_error",
                              "invalid_api_key")
        if mode == "429":
            return body, _err(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
        if mode == "garbage":
            return body, Response(b"<html>not json</html>", 200, media_type="application/json")
        if mode == "slow":
            await asyncio.sleep(3)
        return body, None

    async def chat(self, request: Request) -> Response:
        body, early = await self._common(request)
        if early is not None:
            return early
        assert body is not None
        if body.get("stream"):
            return StreamingResponse(self._chat_stream(body), media_type="text/event-stream")
        return JSONResponse({
            "id": "chatcmpl-upstream1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
            "system_fingerprint": "fp_upstream",
        }, headers={"x-request-id": "upstream-req-1"})

    async def _chat_stream(self, body: dict[str, Any]):
        usage_wanted = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-upstream2", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        if usage_wanted:
            base["usage"] = None

        def ev(obj: dict[str, Any]) -> bytes:
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        yield ev({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "finish_reason": None}]})
        for i, w in enumerate(WORDS):
            if self.mode == "gated" and i == 1:
                await asyncio.to_thread(self.release.wait, 10)
            if self.mode == "midstream" and i == 2:
                yield ev({"error": {"message": "upstream exploded", "type": "server_error"}})
                return
            if i == 3:
                yield b": keep-alive comment\n\n"
            yield ev({**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        yield ev({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if usage_wanted:
            yield ev({**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5,
                                                       "total_tokens": 16}})
        yield b"data: [DONE]\n\n"

    async def completions(self, request: Request) -> Response:
        body, early = await self._common(request)
        if early is not None:
            return early
        assert body is not None
        return JSONResponse({
            "id": "cmpl-upstream", "object": "text_completion", "created": 1, "model": body["model"],
            "choices": [{"text": " continued", "index": 0, "logprobs": None, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        })

    async def embeddings(self, request: Request) -> Response:
        body, early = await self._common(request)
        if early is not None:
            return early
        assert body is not None
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.6, 0.8]} for i, _ in enumerate(inputs)],
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        })
