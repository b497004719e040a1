"""A minimal OpenAI-compatible upstream for benchmarks: fixed answers, no work, raw ASGI."""

from __future__ import annotations

import argparse
import json

ANSWER = "The quick brown fox jumps over the lazy dog. " * 4
BODY = json.dumps({
    "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000, "model": "mock",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52},
}).encode()
WORDS = ANSWER.split(" ")


def _chunk(delta: dict, finish=None, usage=None) -> bytes:
    obj = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000, "model": "mock",
           "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    stream = b'"stream": true' in body or b'"stream":true' in body
    if not stream:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": BODY})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": _chunk({"role": "assistant", "content": ""}), "more_body": True})
    for w in WORDS:
        await send({"type": "http.response.body", "body": _chunk({"content": w + " "}), "more_body": True})
    await send({"type": "http.response.body", "body": _chunk({}, "stop"), "more_body": True})
    await send({"type": "http.response.body",
                "body": _chunk({}, usage={"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}),
                "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


if __name__ == "__main__":
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8001)
    a = ap.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False, http="httptools")
