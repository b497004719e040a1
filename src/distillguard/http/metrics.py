"""Prometheus metrics, fed by the ledger observer hook (one registry per app)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..ledger.record import LedgerRecord


class Metrics:
    def __init__(self, ledger_writer: Any = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dg_requests_total", "API requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.tokens = Counter("dg_tokens_total", "Tokens charged", ["kind"], registry=self.registry)
        self.latency = Histogram(
            "dg_request_duration_seconds",
            "Time from request start to ledger record (full answer for streams)",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self._writer = ledger_writer
        if ledger_writer is not None:
            g = Gauge("dg_ledger_pending", "Ledger records not yet in the store", registry=self.registry)
            g.set_function(lambda: float(getattr(self._writer, "pending", 0)))
            w = Gauge("dg_ledger_written", "Ledger records written to the store", registry=self.registry)
            w.set_function(lambda: float(getattr(self._writer, "written", 0)))

    def track_events(self, publisher: Any) -> None:
        """Export the usage event publisher's counters (published, dropped, failed)."""
        g = Gauge("dg_usage_events", "Usage events by outcome", ["outcome"], registry=self.registry)
        for outcome in ("published", "dropped", "failed"):
            g.labels(outcome).set_function(lambda o=outcome: float(getattr(publisher, o, 0)))

    def track_detection(self, online: Any) -> None:
        """Export the online detector's state (``online``: the deferred detector; 0 until it has loaded)."""
        def value(read: Any) -> float:
            det = online.target
            return float(read(det)) if det is not None else 0.0

        for name, doc, read in (
            ("dg_detection_accounts", "Accounts the online detector holds windows of", lambda d: d.accounts),
            ("dg_detection_rings", "Rings of accounts flagged by the last online ring scan", lambda d: d.ring_count),
            ("dg_detection_ring_scan_seconds", "Duration of the last online ring scan", lambda d: d.ring_scan_seconds),
            ("dg_detection_errors", "Records the online detector could not read", lambda d: d.errors),
        ):
            Gauge(name, doc, registry=self.registry).set_function(lambda r=read: value(r))

    def observe(self, rec: LedgerRecord) -> None:
        self.requests.labels(rec.endpoint, str(rec.status)).inc()
        if rec.prompt_tokens:
            self.tokens.labels("prompt").inc(rec.prompt_tokens)
        if rec.completion_tokens:
            self.tokens.labels("completion").inc(rec.completion_tokens)
        if rec.latency_ms is not None:
            self.latency.labels(rec.endpoint).observe(rec.latency_ms / 1000.0)
