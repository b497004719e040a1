"""Online detection inside the gateway: a ledger observer keeping per-account sliding-window state.

``observe(record)`` is synchronous, cheap (feature extraction + O(1) updates; the model runs only at window
checkpoints) and never raises. Each account has a current window and the previous one; a window closes after
``window`` requests, so the signals describe recent behaviour, and a flag stays visible for one more window.
Within a window the client, route and templated sub-streams are scored as in the batch engine (at most
``MAX_ONLINE_SUBS`` per window); per-key streams and cross-account rings are a batch matter (``Detector``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .account import AccountState
from .bench import BenchmarkIndex, default_index
from .continuity import ServedAnswers
from .engine import CHECKPOINTS, EVAL_PROBABILITY, SUB_CHECKPOINTS, SUB_MAX_SHARE, templated, unshare
from .features import RequestFeatures, extract
from .model import DEFAULT_TARGET_FPR, FAMILIES, ScoringModel, family, rescale
from .reasons import example_reasons, feature_reasons

log = logging.getLogger(__name__)
MAX_ONLINE_SUBS = 8  # sub-streams per account window (each is an AccountState: memory is bounded per account)


@dataclass
class _Window:
    state: AccountState
    score: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    vector: dict[str, float] | None = None
    flagged_after: int | None = None
    next_cp: int = 0
    subs: dict[str, _Window] = field(default_factory=dict)  # client / route / templated sub-streams (engine)
    best_sub: _Window | None = None  # the highest-scoring sub-stream, when it outscores the window
    # sub-streams that have had every request of the window so far share its state object (``_observe``)
    sharing: list[tuple[str, _Window]] = field(default_factory=list)

    def unshare(self, keep: tuple[str, str]) -> None:
        """Give each sharing sub-stream whose id is not in ``keep`` a copy of the window's state so far (the next
        request is not theirs). A sharing sub-stream was never scored: it was never a minority of its window."""
        unshare(self, keep)


@dataclass
class _Account:
    current: _Window
    previous: _Window | None = None
    total: int = 0
    updated: float = 0.0
    served: ServedAnswers = field(default_factory=ServedAnswers)  # answers served to the account (``continuity``)


class OnlineDetector:
    """Per-account sliding-window scoring of live traffic (a ``Gateway`` observer)."""

    share_streams: bool = True  # off only in tests, to check that sharing window states changes no result

    def __init__(
        self,
        model: ScoringModel | None = None,
        target_fpr: float = DEFAULT_TARGET_FPR,
        window: int = 2000,
        bench: BenchmarkIndex | None = None,
        max_accounts: int = 100_000,
    ) -> None:
        self.model = model or ScoringModel.load()
        self.thresholds = {f: self.model.threshold(target_fpr, f) for f in FAMILIES}
        self.threshold = self.thresholds["account"]
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
        f = acc.served.check(f)
        w = acc.current
        csid, rsid = f"c:{f.client}", f"r:{f.route}"
        for sid, _ in w.sharing:
            if sid != csid and sid != rsid:
                w.unshare((csid, rsid))
                break
        repeat = f.prompt_hash in w.state.prompts
        w.state.add(f)
        n = w.state.n
        if w.next_cp < len(CHECKPOINTS) and n == CHECKPOINTS[w.next_cp]:
            w.next_cp += 1
            self._score(w)
        sids = [csid, rsid] + (["t"] if templated(w.state, f, repeat) else [])
        for sid in sids:
            sub = w.subs.get(sid)
            if sub is None:
                if len(w.subs) >= MAX_ONLINE_SUBS:
                    continue
                if n == 1 and self.share_streams:  # the window's first request: the sub-stream is the window so far
                    w.subs[sid] = sub = _Window(w.state)
                    w.sharing.append((sid, sub))
                    continue
                sub = w.subs[sid] = _Window(AccountState(org))
            elif sub.state is w.state:
                continue
            sub.state.add(f)
            m = sub.state.n
            if sub.next_cp < len(SUB_CHECKPOINTS) and m == SUB_CHECKPOINTS[sub.next_cp]:
                sub.next_cp += 1
                if m <= SUB_MAX_SHARE * n:
                    thr = self.thresholds[family(sid)]
                    self._score(sub, n, thr)
                    sc = rescale(sub.score, thr, self.threshold)
                    if sc > w.score:
                        w.best_sub = sub
                        w.score = sc
                        if w.flagged_after is None and sub.flagged_after is not None:
                            w.flagged_after = n
        if n >= self.window:
            self._score(w)
            acc.previous, acc.current = w, _Window(AccountState(org))

    def _score(self, w: _Window, account_n: int | None = None, threshold: float | None = None) -> None:
        v = w.state.vector()
        p = self.model.probabilities(v)
        w.vector, w.probabilities = v, p
        w.score = max(w.score, p["distillation"])
        if w.flagged_after is None and p["distillation"] >= (threshold or self.threshold):
            w.flagged_after = account_n or w.state.n

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
                src = best.best_sub if best.best_sub is not None and best.best_sub.vector is not None else best
                assert src.vector is not None
                reasons = feature_reasons(self.model, src.vector, "distillation") + example_reasons(src.state)
                if src is not best:
                    reasons.insert(0, f"a sub-stream ({src.state.n} of {best.state.n} requests) scores "
                                      f"{src.score:.3f} on its own")
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
