"""Structured logging (structlog) with secrets redacted from every event."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from .access.keys import redact

_SECRET_FIELDS = {"authorization", "api_key", "key", "secret", "token", "admin_token", "password", "database_url"}


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for k, v in list(event.items()):
        if k.lower() in _SECRET_FIELDS and k != "key_id":
            event[k] = "[redacted]"
        elif isinstance(v, str):
            event[k] = redact(v)
    return event


def configure(level: str = "INFO", json: bool = False) -> None:
    """Route stdlib and structlog logs through one redacting pipeline to stderr."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn.access",):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
