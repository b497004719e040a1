"""The usage event stream: one compact event per ledger record, published to NATS JetStream."""

from .nats import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    EventStreamError,
    NatsUnavailable,
    NatsUsagePublisher,
    iter_usage,
    redact_url,
)
from .usage import UsageEvent, subject_for, subject_token

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_STREAM",
    "EventStreamError",
    "NatsUnavailable",
    "NatsUsagePublisher",
    "UsageEvent",
    "iter_usage",
    "redact_url",
    "subject_for",
    "subject_token",
]
