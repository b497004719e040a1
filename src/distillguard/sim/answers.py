"""Answers for simulated requests from the replay upstream, exactly as the gateway would return them.

A request whose conversation is a corpus conversation (an exact match in the replay index), asking
for one choice without tools, takes a fast path: the recorded answer of the matched answer point,
shaped by ``replay_text.shape`` — the same computation ``ReplayUpstream`` performs (a test checks
they agree). Everything else goes through ``ReplayUpstream.complete`` itself.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .. import tokens
from ..config import ModelRoute
from ..upstreams import replay_text
from ..upstreams.base import UpstreamCall
from ..upstreams.replay import ReplayUpstream
from ..upstreams.replay_index import Query

CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Answer:
    texts: tuple[str, ...]
    finish_reasons: tuple[str | None, ...]
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str:
        """The assistant text as the ledger records it (choices joined, like the gateway)."""
        return self.texts[0] if len(self.texts) == 1 else "\n\n".join(self.texts)


class Answerer:
    """Synchronous replay answers for the offline simulator (one per process)."""

    def __init__(self, corpus_dir: Path | None, cache_dir: Path) -> None:
        self.replay = ReplayUpstream(corpus_dir, cache_dir)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[str, ModelRoute] = {}
        self._cache: OrderedDict[bytes, Answer] = OrderedDict()
        self.fast = 0
        self.slow = 0

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _route(self, model: str) -> ModelRoute:
        r = self._routes.get(model)
        if r is None:
            r = self._routes[model] = ModelRoute(name=model, upstream="replay")
        return r

    def answer(self, endpoint: str, body: dict[str, Any], request_id: str = "req_sim") -> Answer:
        """The answer to ``body`` sent to ``endpoint`` (``/v1/chat/completions`` or ``/v1/completions``)."""
        key = endpoint.encode() + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        ans = None
        if endpoint == "/v1/chat/completions":
            ans = self._fast_chat(body)
        if ans is None:
            ans = self._complete(endpoint, body, request_id)
            self.slow += 1
        else:
            self.fast += 1
        self._cache[key] = ans
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return ans

    def _fast_chat(self, body: dict[str, Any]) -> Answer | None:
        if (body.get("n") or 1) != 1 or body.get("tools") or body.get("stream"):
            return None
        messages = body["messages"]
        index = self.replay.index
        unit = index.exact(Query.from_messages(messages))
        if unit is None:
            return None
        model = str(body.get("model"))
        enc = tokens.encoding_for(model)
        limit = body.get("max_completion_tokens")
        if limit is None:
            limit = body.get("max_tokens")
        s = replay_text.shape(enc, index.answer(unit), stop=body.get("stop"), max_tokens=limit)
        return Answer((s.text,), (s.finish_reason,), tokens.count_messages(messages, model), s.tokens)

    def _complete(self, endpoint: str, body: dict[str, Any], request_id: str) -> Answer:
        kind = "chat" if endpoint == "/v1/chat/completions" else "completions"
        call = UpstreamCall(self._route(str(body.get("model"))), kind, body, request_id)  # type: ignore[arg-type]
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        c = self._loop.run_until_complete(self.replay.complete(call))
        return Answer(tuple(c.texts), tuple(c.finish_reasons), int(c.prompt_tokens or 0),
                      int(c.completion_tokens or 0))
