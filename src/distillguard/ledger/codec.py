"""JSON lines for the journal and the export: orjson, with the stdlib as a fallback for what it refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson

from .record import _FIELDS, LedgerRecord

_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def dumps_line(obj: Any) -> bytes:
    """One JSON document followed by a newline."""
    try:
        return orjson.dumps(obj, default=str, option=_OPTS)
    except TypeError:  # e.g. an integer beyond 64 bits in a request body
        return json.dumps(obj, default=str, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def loads_line(line: bytes) -> Any | None:
    """The document on ``line``, or ``None`` when the line is not valid JSON (a torn write)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            return json.loads(line)
        except ValueError:
            return None


def record_row(record: LedgerRecord) -> dict[str, Any]:
    """The persisted fields of ``record`` (a shallow copy: cheaper than ``to_row``)."""
    return {f: getattr(record, f) for f in _FIELDS}
