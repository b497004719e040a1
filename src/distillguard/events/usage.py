"""The compact usage event published for every ledger record (no bodies, no text, no secrets)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..ledger.record import LedgerRecord

SCHEMA_VERSION = 1
ANONYMOUS = "anonymous"
_BAD_TOKEN_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(slots=True, frozen=True)
class UsageEvent:
    """What one request cost and how it ended. Deliberately excludes the request body, the response
    text, the client IP and user agent: only ids, counts and outcome."""

    id: str
    ts: float
    org: str | None
    key: str | None  # key id, never the secret
    project: str | None
    model: str | None
    endpoint: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float | None
    replica: str | None
    error_code: str | None = None

    @classmethod
    def from_record(cls, rec: LedgerRecord) -> "UsageEvent":
        if not isinstance(rec.id, str) or not rec.id:
            raise ValueError("ledger record without an id")
        return cls(
            id=rec.id,
            ts=float(rec.ts),
            org=rec.org,
            key=rec.key,
            project=rec.project,
            model=rec.model,
            endpoint=rec.endpoint,
            status=int(rec.status),
            prompt_tokens=int(rec.prompt_tokens or 0),
            completion_tokens=int(rec.completion_tokens or 0),
            latency_ms=None if rec.latency_ms is None else float(rec.latency_ms),
            replica=rec.replica,
            error_code=rec.error_code,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "ts": self.ts,
            "org": self.org,
            "key": self.key,
            "project": self.project,
            "model": self.model,
            "endpoint": self.endpoint,
            "status": self.status,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": self.latency_ms,
            "replica": self.replica,
            "error_code": self.error_code,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> "UsageEvent":
        """Parse an event; unknown fields (from a newer schema) are ignored."""
        d = orjson.loads(data)
        if not isinstance(d, dict):
            raise ValueError("usage event is not a JSON object")
        return cls(
            id=d["id"],
            ts=d["ts"],
            org=d.get("org"),
            key=d.get("key"),
            project=d.get("project"),
            model=d.get("model"),
            endpoint=d["endpoint"],
            status=d["status"],
            prompt_tokens=d.get("prompt_tokens", 0),
            completion_tokens=d.get("completion_tokens", 0),
            latency_ms=d.get("latency_ms"),
            replica=d.get("replica"),
            error_code=d.get("error_code"),
        )


@functools.lru_cache(maxsize=4096)
def subject_token(org: str | None) -> str:
    """A NATS subject token for an org id (``anonymous`` when unknown; ``.``, ``*``, ``>``, spaces → ``_``)."""
    if not org:
        return ANONYMOUS
    return _BAD_TOKEN_CHARS.sub("_", org)


def subject_for(prefix: str, org: str | None) -> str:
    return f"{prefix}.{subject_token(org)}"
