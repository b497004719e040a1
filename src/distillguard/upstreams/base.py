"""The Upstream protocol: the gateway hands a validated OpenAI request to an upstream and gets
OpenAI-shaped answers back. The gateway never knows which upstream it talks to (cf. httpx transports).

Bodies are OpenAI JSON objects (dicts). ``call.body["model"]`` is the model name the client asked
for; an upstream may send a different name to its provider (``route.upstream_model``) but must
answer with the client's name in ``model``.

Streams yield OpenAI chunk objects (``chat.completion.chunk`` for chat, ``text_completion`` for
legacy completions), without the ``data:`` framing and without ``[DONE]``. An upstream should end
with a usage chunk (``choices: []``, ``usage: {...}``) when it can; the gateway strips it unless the
client asked for ``stream_options.include_usage``.

Failures raise ``distillguard.errors`` exceptions: ``UpstreamTimeout`` (504), ``UpstreamError``
(502) for connection failures, 5xx and garbage; a 4xx from the provider that is the client's fault
(400, 404, 413, 422) is re-raised as a ``GatewayError`` with that status and the provider's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol

from ..config import ModelRoute

Endpoint = Literal["chat", "completions", "embeddings"]


@dataclass(slots=True)
class UpstreamCall:
    route: ModelRoute
    endpoint: Endpoint
    body: dict[str, Any]
    request_id: str


@dataclass(slots=True)
class Completion:
    """A non-streaming answer: the body to return, plus what the ledger needs from it."""

    body: dict[str, Any]
    texts: list[str]  # text of each choice, in index order
    finish_reasons: list[str | None]
    prompt_tokens: int | None = None  # as reported by the upstream (None: unknown)
    completion_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Upstream(Protocol):
    async def complete(self, call: UpstreamCall) -> Completion: ...

    def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]: ...

    async def embed(self, call: UpstreamCall) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...
