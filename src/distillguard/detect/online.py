"""Online detection inside the gateway: a ledger observer keeping per-account sliding-window state.

``observe(record)`` is synchronous, cheap (feature extraction + O(1) updates; the model runs only at window
checkpoints) and never raises. Each account has a current window and the previous one; a window closes after
``window`` requests, so the signals describe recent behaviour, and a flag stays visible for one more window.
Cross-account rings are a batch matter (``Detector``), not computed here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .account import AccountState
from .bench import BenchmarkIndex, default_index
from .engine import CHECKPOINTS, EVAL_PROBABILITY
from .features import RequestFeatures, extract
from .model import DEFAULT_TARGET_FPR, ScoringModel
from .reasons import example_reasons, feature_reasons

log = logging.getLogger(__name__)


@dataclass
class _Window:
    state: AccountState
    score: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    vector: dict[str, float] | None = None
    flagged_after: int | None = None
    next_cp: int = 0


@dataclass
class _Account:
    current: _Window
    previous: _Window | None = None
    total: int = 0
    updated: float = 0.0


class OnlineDetector:
    """Per-account sliding-window scoring of live traffic (a ``Gateway`` observer)."""

    def __init__(
        self,
        model: ScoringModel | None = None,
        target_fpr: float = DEFAULT_TARGET_FPR,
        window: int = 2000,
        bench: BenchmarkIndex | None = None,
        max_accounts: int = 100_000,
    ) -> None:
        self.model = model or ScoringModel.load()
        self.threshold = self.model.threshold(target_fpr)
        self.window = window
        self.bench = bench if bench is not None else default_index()
        self.max_accounts = max_accounts
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()
        self.errors = 0

    def __call__(self, record: Any) -> None:
        self.observe(record)

    def observe(self, record: Any) -> None:
        """Take one ``LedgerRecord`` (or traffic dict) into its account's window. Never raises."""
        try:
            rec = record if isinstance(record, dict) else record.to_traffic()
            org = rec.get("org")
            if not org:
                return
            f = extract(rec, self.bench)
            with self._lock:
                self._observe(org, f)
        except Exception:
            self.errors += 1
            log.debug("online detector failed on a record", exc_info=True)

    def _observe(self, org: str, f: RequestFeatures) -> None:
        acc = self._accounts.get(org)
        if acc is None:
            if len(self._accounts) >= self.max_accounts:
                oldest = min(self._accounts, key=lambda o: self._accounts[o].updated)
                del self._accounts[oldest]
            acc = self._accounts[org] = _Account(_Window(AccountState(org)))
        acc.total += 1
        acc.updated = f.ts or time.time()
        w = acc.current
        w.state.add(f)
        n = w.state.n
        if w.next_cp < len(CHECKPOINTS) and n == CHECKPOINTS[w.next_cp]:
            w.next_cp += 1
            self._score(w)
        if n >= self.window:
            self._score(w)
            acc.previous, acc.current = w, _Window(AccountState(org))

    def _score(self, w: _Window) -> None:
        v = w.state.vector()
        p = self.model.probabilities(v)
        w.vector, w.probabilities = v, p
        w.score = max(w.score, p["distillation"])
        if w.flagged_after is None and p["distillation"] >= self.threshold:
            w.flagged_after = w.state.n

    def signals(self, org_id: str) -> dict[str, Any] | None:
        """The account's current detection signals (None if it has sent nothing since start)."""
        with self._lock:
            acc = self._accounts.get(org_id)
            if acc is None:
                return None
            cur, prev = acc.current, acc.previous
            if cur.vector is None and cur.state.n >= 5:
                self._score(cur)
            windows = [w for w in (cur, prev) if w is not None and w.vector is not None]
            if not windows:
                return {"org": org_id, "score": 0.0, "label": "benign", "flagged": False, "requests": acc.total,
                        "window_requests": cur.state.n, "reasons": [], "threshold": self.threshold}
            best = max(windows, key=lambda w: w.score)
            flagged = best.score >= self.threshold
            probs = best.probabilities
            assert best.vector is not None
            if flagged:
                label = "distillation"
                reasons = feature_reasons(self.model, best.vector, "distillation") + example_reasons(best.state)
            elif probs.get("evaluation", 0.0) >= EVAL_PROBABILITY:
                label = "evaluation"
                reasons = feature_reasons(self.model, best.vector, "evaluation")
            else:
                label, reasons = "benign", []
            return {
                "org": org_id, "score": round(best.score, 6), "label": label, "flagged": flagged,
                "requests": acc.total, "window_requests": best.state.n, "flagged_after": best.flagged_after,
                "probabilities": {k: round(v, 6) for k, v in probs.items()}, "reasons": reasons,
                "threshold": self.threshold, "updated": acc.updated,
            }

    def flagged(self) -> list[dict[str, Any]]:
        """Signals of every account currently flagged, highest score first."""
        with self._lock:
            orgs = list(self._accounts)
        out = [s for o in orgs if (s := self.signals(o)) is not None and s["flagged"]]
        return sorted(out, key=lambda s: -s["score"])
