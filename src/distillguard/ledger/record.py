"""One ledger record per API request, and its mapping to the traffic format (contracts §1)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any


def new_request_id() -> str:
    """``req_`` + 24 hex chars: time-ordered prefix (ms) + randomness."""
    return f"req_{int(time.time() * 1000):011x}{os.urandom(7).hex()}"


@dataclass(slots=True)
class LedgerRecord:
    id: str
    ts: float  # request start, seconds since the epoch
    endpoint: str  # "/v1/chat/completions", ...
    status: int  # HTTP status returned to the client
    org: str | None = None
    key: str | None = None  # key id, never the secret
    project: str | None = None
    model: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ip: str | None = None
    user_agent: str | None = None
    request: dict[str, Any] | None = None  # the request body as sent (None when bodies are not retained)
    response_text: str | None = None
    finish_reason: str | None = None
    error_code: str | None = None
    replica: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # not persisted; for in-process observers

    def to_row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra", None)
        return d

    @classmethod
    def from_row(cls, row: Any) -> "LedgerRecord":
        m = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
        return cls(**{k: m.get(k) for k in _FIELDS if k in m})

    def to_traffic(self) -> dict[str, Any]:
        """The traffic-record shape of ../shared/spec/contracts.md §1."""
        out: dict[str, Any] = {
            "id": self.id,
            "ts": self.ts,
            "org": self.org,
            "key": self.key,
            "project": self.project,
            "endpoint": self.endpoint,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "request": self.request if self.request is not None else {"model": self.model},
            "response": {"status": self.status, "text": self.response_text, "finish_reason": self.finish_reason},
            "usage": {"prompt_tokens": self.prompt_tokens or 0, "completion_tokens": self.completion_tokens or 0},
            "latency_ms": self.latency_ms,
        }
        if self.error_code:
            out["response"]["error_code"] = self.error_code
        return out


_FIELDS = [f for f in LedgerRecord.__dataclass_fields__ if f != "extra"]
