"""The embedded default upstream: answers with real recorded model responses.

An exact match on the conversation returns its recorded answer; otherwise the lexically nearest
recorded conversation supplies it (``replay_index``). Answers are shaped like a model's output
(``stop``, ``max_tokens`` with the model's tokenizer, ``n`` distinct choices, 1–4-token stream
deltas) and returned in OpenAI's exact response shapes. Everything is deterministic.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import numpy as np
import tiktoken

from .. import tokens
from ..errors import InvalidRequest
from . import embedding, replay_text
from .base import Completion, UpstreamCall
from .replay_index import Match, Query, ReplayIndex

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

MAX_N = 128
LEGACY_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
EMBED_MAX_TOKENS = 8192
EMBED_MAX_INPUTS = 2048
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _rid(seed: str, length: int = 29) -> str:
    """A deterministic OpenAI-looking id suffix."""
    n = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=24).digest(), "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, 62)
        out.append(_ALNUM[r])
    return "".join(out)


@dataclass(slots=True)
class Choice:
    index: int
    text: str  # content, or the arguments of a tool call
    finish_reason: str
    tokens: int
    match: Match
    tool: str | None = None  # function name when the answer is a tool call
    prefix: str = ""  # legacy ``echo``: the prompt, sent before the text


class ReplayUpstream:
    """Upstream protocol over the recorded corpus (``corpus_dir=None``: the shipped compact corpus)."""

    def __init__(
        self,
        corpus_dir: Path | None = None,
        cache_dir: Path | None = None,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "distillguard-cache"
        self.clock = clock
        self.sleep = sleep
        self._index: ReplayIndex | None = None
        self._lock = threading.Lock()

    # ---- index -----------------------------------------------------------------------------------
    @property
    def index(self) -> ReplayIndex:
        """The index, loaded from the cache (or built and cached) on first use."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = ReplayIndex.load_or_build(self.corpus_dir, self.cache_dir)
        return self._index

    async def warm(self) -> ReplayIndex:
        """Load the index without blocking the event loop."""
        if self._index is not None:
            return self._index
        return await asyncio.to_thread(lambda: self.index)

    def _fingerprint(self) -> str:
        return "fp_" + self.index.fingerprint[:10]

    # ---- matching --------------------------------------------------------------------------------
    def _distinct(self, q: Query, n: int) -> list[Match]:
        """``n`` answer points with pairwise different answers, best first (fewer if the corpus runs out)."""
        idx = self.index
        k = n
        while True:
            ms = idx.search(q, min(2 * k + 2, idx.size))
            out: list[Match] = []
            seen: set[str] = set()
            for m in ms:
                a = idx.answer(m.unit)
                if a not in seen:
                    seen.add(a)
                    out.append(m)
                if len(out) == n:
                    return out
            if len(ms) >= idx.size:
                return out
            k *= 2

    def _shape(self, enc: tiktoken.Encoding, index: int, answer: str, m: Match, body: dict[str, Any],
               limit: int | None, tools: set[str]) -> Choice:
        call = _as_tool_call(answer, tools)
        if call is not None:
            s = replay_text.shape(enc, call[1], max_tokens=limit)
            return Choice(index, s.text, "length" if s.finish_reason == "length" else "tool_calls", s.tokens, m,
                          tool=call[0])
        s = replay_text.shape(enc, answer, stop=body.get("stop"), max_tokens=limit)
        return Choice(index, s.text, s.finish_reason, s.tokens, m)

    def _choices(self, call: UpstreamCall) -> tuple[list[Choice], int, str]:
        """The choices for a chat or legacy completions call, its prompt tokens, and the client's model."""
        body = call.body
        model = str(body.get("model") or call.route.name)
        enc = tokens.encoding_for(model, call.route.encoding)
        n = _int_param(body, "n", 1, 1, MAX_N)
        limit_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        if call.endpoint == "chat":
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise InvalidRequest("'messages' must be a non-empty array", param="messages")
            limit = _int_param(body, limit_key, None, 1, None)
            tools = _tool_names(body)
            ms = self._distinct(Query.from_messages(messages), n)
            choices = [self._shape(enc, i, self.index.answer(m.unit), m, body, limit, tools)
                       for i, m in enumerate(ms)]
            return choices, tokens.count_messages(messages, model, call.route.encoding), model
        limit = _int_param(body, "max_tokens", LEGACY_DEFAULT_MAX_TOKENS, 0, None)
        prompts = _prompts(body.get("prompt"), enc)
        echo = bool(body.get("echo"))
        choices = []
        for p in prompts:
            for m in self._distinct(Query.from_prompt(p), n):
                answer = self.index.answer(m.unit)
                if p and answer.startswith(p) and len(answer) > len(p):  # recorded as prompt + continuation
                    answer = answer[len(p):]
                c = self._shape(enc, len(choices), answer, m, body, limit, set())
                c.prefix = p if echo else ""
                choices.append(c)
        return choices, tokens.count_prompt(body.get("prompt"), model, call.route.encoding), model

    # ---- Upstream protocol -------------------------------------------------------------------------
    async def complete(self, call: UpstreamCall) -> Completion:
        await self.warm()
        choices, prompt_tokens, model = self._choices(call)
        await self._simulate(call, choices)
        completion_tokens = sum(c.tokens for c in choices)
        usage = _usage(prompt_tokens, completion_tokens, call.endpoint == "chat")
        head = self._head(call, model)
        if call.endpoint == "chat":
            body = {**head, "choices": [_chat_choice(c, call.request_id) for c in choices], "usage": usage,
                    "system_fingerprint": self._fingerprint()}
        else:
            body = {**head, "choices": [{"text": c.prefix + c.text, "index": c.index, "logprobs": None,
                                         "finish_reason": c.finish_reason} for c in choices], "usage": usage}
        return Completion(
            body=body,
            texts=[c.prefix + c.text for c in choices],
            finish_reasons=[c.finish_reason for c in choices],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            extra={"replay": [_provenance(self.index, c.match) for c in choices]},
        )

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        await self.warm()
        choices, prompt_tokens, model = self._choices(call)
        enc = tokens.encoding_for(model, call.route.encoding)
        chat = call.endpoint == "chat"
        head = self._head(call, model, chunk=True)
        if chat:
            head["system_fingerprint"] = self._fingerprint()
        if bool((call.body.get("stream_options") or {}).get("include_usage")):
            head["usage"] = None

        def chunk(choice: dict[str, Any]) -> dict[str, Any]:
            return {**head, "choices": [choice]}

        def delta(c: Choice, piece: str, first: bool = False) -> dict[str, Any]:
            if not chat:
                return chunk({"text": piece, "index": c.index, "logprobs": None, "finish_reason": None})
            if c.tool is None:
                d: dict[str, Any] = {"content": piece}
            else:
                tc: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
                if first:
                    tc = {"index": 0, "id": _tool_call_id(call.request_id, c.index), "type": "function",
                          "function": {"name": c.tool, "arguments": piece}}
                d = {"tool_calls": [tc]}
            if first:
                d = {"role": "assistant", "content": "" if c.tool is None else None, **d, "refusal": None}
            return chunk({"index": c.index, "delta": d, "logprobs": None, "finish_reason": None})

        if call.route.latency_ms > 0:
            await self.sleep(call.route.latency_ms / 1000.0)
        plans = [([c.prefix] if c.prefix else []) + replay_text.pieces(enc, c.text) for c in choices]
        if chat:
            for c in choices:
                yield delta(c, "", first=True)
        step = 0
        while any(step < len(p) for p in plans):
            if step and call.route.chunk_delay_ms > 0:
                await self.sleep(call.route.chunk_delay_ms / 1000.0)
            for c, plan in zip(choices, plans):
                if step < len(plan):
                    yield delta(c, plan[step])
            step += 1
        for c in choices:
            if chat:
                yield chunk({"index": c.index, "delta": {}, "logprobs": None, "finish_reason": c.finish_reason})
            else:
                yield chunk({"text": "", "index": c.index, "logprobs": None, "finish_reason": c.finish_reason})
        completion_tokens = sum(c.tokens for c in choices)
        yield {**head, "choices": [], "usage": _usage(prompt_tokens, completion_tokens, chat)}

    async def embed(self, call: UpstreamCall) -> dict[str, Any]:
        body = call.body
        model = str(body.get("model") or call.route.name)
        enc = tokens.encoding_for(model, call.route.encoding)
        texts, counts = _embedding_inputs(body.get("input"), enc)
        default_dims = embedding.default_dimensions(model)
        dims = _int_param(body, "dimensions", default_dims, 1, default_dims)
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise InvalidRequest("encoding_format must be 'float' or 'base64'", param="encoding_format")
        if len(texts) > 32:
            vecs = await asyncio.to_thread(embedding.embed_texts, texts, dims)
        else:
            vecs = embedding.embed_texts(texts, dims)
        if call.route.latency_ms > 0:
            await self.sleep(call.route.latency_ms / 1000.0)
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") if fmt == "base64"
             else v.tolist()}
            for i, v in enumerate(vecs)
        ]
        total = sum(counts)
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": total, "total_tokens": total}}

    async def aclose(self) -> None:
        return None

    # ---- helpers -----------------------------------------------------------------------------------
    def _head(self, call: UpstreamCall, model: str, chunk: bool = False) -> dict[str, Any]:
        if call.endpoint == "chat":
            return {"id": "chatcmpl-" + _rid(call.request_id),
                    "object": "chat.completion.chunk" if chunk else "chat.completion",
                    "created": int(self.clock()), "model": model}
        return {"id": "cmpl-" + _rid(call.request_id), "object": "text_completion",
                "created": int(self.clock()), "model": model}

    async def _simulate(self, call: UpstreamCall, choices: list[Choice]) -> None:
        """Non-streaming latency: time to first token plus the chunk delays of the longest choice."""
        delay = call.route.latency_ms
        if call.route.chunk_delay_ms > 0 and choices:
            enc = tokens.encoding_for(str(call.body.get("model") or call.route.name), call.route.encoding)
            longest = max(len(replay_text.pieces(enc, c.text)) for c in choices)
            delay += call.route.chunk_delay_ms * max(longest - 1, 0)
        if delay > 0:
            await self.sleep(delay / 1000.0)


# ---- request parsing and response pieces ----------------------------------------------------------------
def _int_param(body: dict[str, Any], name: str, default: int | None, lo: int, hi: int | None) -> Any:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidRequest(f"'{name}' must be an integer {bound}", param=name, code="invalid_value")
    return v


def _prompts(prompt: Any, enc: tiktoken.Encoding) -> list[str]:
    """The prompts of a legacy completions request as text (token arrays decoded)."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(x, int) for x in prompt):
            return [enc.decode(prompt)]
        out = []
        for p in prompt:
            if isinstance(p, str):
                out.append(p)
            elif isinstance(p, list) and all(isinstance(x, int) for x in p):
                out.append(enc.decode(p))
            else:
                raise InvalidRequest("'prompt' must be a string, an array of strings or of token arrays", param="prompt")
        return out
    raise InvalidRequest("'prompt' must be a string, an array of strings or of token arrays", param="prompt")


def _embedding_inputs(inp: Any, enc: tiktoken.Encoding) -> tuple[list[str], list[int]]:
    """(texts, token counts) of an embeddings ``input``: str | list[str] | list[int] | list[list[int]]."""
    bad = InvalidRequest("'input' must be a non-empty string, array of strings, or token array(s)", param="input")
    if isinstance(inp, str):
        items: list[Any] = [inp]
    elif isinstance(inp, list) and inp and all(isinstance(x, int) and not isinstance(x, bool) for x in inp):
        items = [inp]
    elif isinstance(inp, list) and inp:
        items = inp
    else:
        raise bad
    if len(items) > EMBED_MAX_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {EMBED_MAX_INPUTS} items", param="input")
    texts, counts = [], []
    for it in items:
        if isinstance(it, str) and it:
            texts.append(it)
            counts.append(len(replay_text.encode(enc, it)))
        elif isinstance(it, list) and it and all(isinstance(x, int) and not isinstance(x, bool) for x in it):
            try:
                texts.append(enc.decode(it))
            except (KeyError, ValueError, OverflowError):
                raise InvalidRequest("'input' holds an invalid token id", param="input") from None
            counts.append(len(it))
        else:
            raise bad
        if counts[-1] > EMBED_MAX_TOKENS:
            raise InvalidRequest(
                f"This model's maximum context length is {EMBED_MAX_TOKENS} tokens, however you requested "
                f"{counts[-1]} tokens in your input. Please reduce your input.",
                param="input", code="context_length_exceeded")
    return texts, counts


def _tool_names(body: dict[str, Any]) -> set[str]:
    tools = body.get("tools")
    if not isinstance(tools, list) or body.get("tool_choice") == "none":
        return set()
    names = set()
    for t in tools:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def _as_tool_call(answer: str, tools: set[str]) -> tuple[str, str] | None:
    """(name, arguments JSON) when a recorded answer is a call of one of the offered tools."""
    s = answer.strip()
    if not tools or not s.startswith("{"):
        return None
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("name") not in tools:
        return None
    args = obj.get("arguments", {})
    return obj["name"], args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)


def _tool_call_id(request_id: str, index: int) -> str:
    return "call_" + _rid(f"{request_id}/tool/{index}", 24)


def _chat_choice(c: Choice, request_id: str) -> dict[str, Any]:
    if c.tool is None:
        msg: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None}
    else:
        msg = {"role": "assistant", "content": None, "refusal": None,
               "tool_calls": [{"id": _tool_call_id(request_id, c.index), "type": "function",
                               "function": {"name": c.tool, "arguments": c.text}}]}
    return {"index": c.index, "message": msg, "logprobs": None, "finish_reason": c.finish_reason}


def _usage(prompt: int, completion: int, chat: bool) -> dict[str, Any]:
    u: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if chat:
        u["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        u["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    return u


def _provenance(index: ReplayIndex, m: Match) -> dict[str, Any]:
    return {"record": index.record_id(m.unit), "match": m.how, "score": round(m.score, 4)}


def vector_from_base64(s: str) -> np.ndarray:
    """Decode an ``encoding_format: base64`` embedding (little-endian float32), as OpenAI's SDK does."""
    return np.frombuffer(base64.b64decode(s), dtype="<f4")
