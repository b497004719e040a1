"""Fast JSON responses and the OpenAI error body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ..errors import GatewayError
from ..limits.base import RateLimitStatus, format_reset


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(err: GatewayError, request_id: str | None = None) -> ORJSONResponse:
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return ORJSONResponse(err.body(), status_code=err.status, headers=headers)


def rate_headers(rate: RateLimitStatus | None) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers OpenAI sends (only for limits that are set)."""
    if rate is None:
        return {}
    h: dict[str, str] = {}
    if rate.limit_requests is not None:
        h["x-ratelimit-limit-requests"] = str(rate.limit_requests)
        h["x-ratelimit-remaining-requests"] = str(max(0, rate.remaining_requests or 0))
        h["x-ratelimit-reset-requests"] = format_reset(rate.reset_requests_s)
    if rate.limit_tokens is not None:
        h["x-ratelimit-limit-tokens"] = str(rate.limit_tokens)
        h["x-ratelimit-remaining-tokens"] = str(max(0, rate.remaining_tokens or 0))
        h["x-ratelimit-reset-tokens"] = format_reset(rate.reset_tokens_s)
    return h
