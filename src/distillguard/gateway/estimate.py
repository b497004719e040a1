"""Token estimates made before a request goes upstream (what the limiter reserves)."""

from __future__ import annotations

from typing import Any

from .. import tokens
from ..config import ModelRoute
from ..upstreams.base import Endpoint


def prompt_tokens(endpoint: Endpoint, body: dict[str, Any], route: ModelRoute) -> int:
    model = body.get("model") or route.name
    if endpoint == "chat":
        return tokens.count_messages(body.get("messages") or [], model, route.encoding)
    if endpoint == "completions":
        return tokens.count_prompt(body.get("prompt"), model, route.encoding)
    return tokens.count_prompt(body.get("input"), model, route.encoding)


def max_output_tokens(endpoint: Endpoint, body: dict[str, Any], default: int) -> int:
    """The most output tokens a request may produce: max_tokens (or max_completion_tokens) × n."""
    if endpoint == "embeddings":
        return 0
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is None:
        limit = 16 if endpoint == "completions" else default
    n = body.get("n") or 1
    if endpoint == "completions":
        prompts = body.get("prompt")
        if isinstance(prompts, list) and prompts and not isinstance(prompts[0], int):
            n *= len(prompts)
    return int(limit) * int(n)
