"""Online detection inside the gateway: a ledger observer keeping per-account sliding-window state.

``observe(record)`` is synchronous, cheap (feature extraction + O(1) updates; the model runs only at window
checkpoints) and never raises. Each account has a current window and the previous one; a window closes after
``window`` requests, so the signals describe recent behaviour, and a flag stays visible for one more window.
Within a window the client, route and templated sub-streams are scored as in the batch engine (at most
``MAX_ONLINE_SUBS`` per window); per-key streams are a batch matter (``Detector``).

Rings: ``scan_rings`` (run periodically by the app, off the event loop) clusters the accounts' recent traffic (their
two windows) as the batch engine does (``rings.find_rings``) and scores each candidate ring as one pseudo-account
against the calibrated ring threshold. Until the next scan, the members of a ring at or above it that are at least
``RING_MEMBER_FLOOR`` harvest-like on their own are flagged with the ring's reasons, as in batch detection. A scan
sees the traffic of this replica only.
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
from .engine import (CHECKPOINTS, EVAL_PROBABILITY, RING_MEMBER_FLOOR, SUB_CHECKPOINTS, SUB_MAX_SHARE, ring_vector,
                     templated, unshare)
from .features import RequestFeatures, extract
from .model import DEFAULT_TARGET_FPR, FAMILIES, ScoringModel, family, rescale
from .reasons import example_reasons, feature_reasons, ring_reasons
from .rings import MIN_REQUESTS as RING_MIN_N
from .rings import Ring, find_rings

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


@dataclass
class RingSignal:
    """A candidate ring at or above the ring threshold at the last ``scan_rings``."""

    ring: Ring
    score: float
    reasons: list[str]
    flagged: list[str]  # the members it flags: those at least RING_MEMBER_FLOOR harvest-like alone, or flagged alone

    def to_json(self) -> dict[str, Any]:
        return {"ring": self.ring.id, "score": round(self.score, 6), "basis": self.ring.basis,
                "members": list(self.ring.members), "flagged_members": list(self.flagged), "reasons": self.reasons}


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
        self.ring_threshold = self.model.ring_threshold(target_fpr)
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()
        self._rings: dict[str, RingSignal] = {}  # member org -> its highest-scoring ring of the last scan
        self._ring_list: list[RingSignal] = []
        self.last_ring_scan: float | None = None  # when the last scan finished (time.time())
        self.ring_scan_seconds = 0.0  # how long it took
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
            windows = self._scored(acc)
            if not windows:
                return {"org": org_id, "score": 0.0, "label": "benign", "flagged": False, "ring": None,
                        "requests": acc.total, "window_requests": acc.current.state.n, "reasons": [],
                        "threshold": self.threshold}
            best = max(windows, key=lambda w: w.score)
            score, flagged_after = best.score, best.flagged_after
            flagged = score >= self.threshold
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
            ring = self._rings.get(org_id)  # only members the ring flags are in ``_rings``
            if ring is not None:
                if flagged:
                    reasons = ring.reasons[:2] + reasons
                else:
                    flagged, label, flagged_after = True, "distillation", acc.total
                    reasons = ring.reasons + example_reasons(best.state, limit=1)
                score = max(score, ring.score)
            return {
                "org": org_id, "score": round(score, 6), "label": label, "flagged": flagged,
                "ring": ring.ring.id if ring is not None else None,
                "requests": acc.total, "window_requests": best.state.n, "flagged_after": flagged_after,
                "probabilities": {k: round(v, 6) for k, v in probs.items()}, "reasons": reasons,
                "threshold": self.threshold, "updated": acc.updated,
            }

    def flagged(self) -> list[dict[str, Any]]:
        """Signals of every account currently flagged, highest score first."""
        with self._lock:
            orgs = list(self._accounts)
        out = [s for o in orgs if (s := self.signals(o)) is not None and s["flagged"]]
        return sorted(out, key=lambda s: -s["score"])

    # -- rings ------------------------------------------------------------------------------------------------------
    def _recent(self, acc: _Account) -> AccountState:
        """A copy of the account's traffic in its two windows (the current one and, if any, the previous one)."""
        st = acc.current.state.copy()
        if acc.previous is not None:
            st.merge(acc.previous.state)
        return st

    def scan_rings(self) -> list[RingSignal]:
        """Cluster the accounts' recent traffic into candidate rings, score each as one pseudo-account, and keep those
        at or above the ring threshold for ``signals`` until the next scan; returns them, highest score first.

        Runs in the caller's thread (the app runs it in a worker thread): each account is copied under the lock one
        at a time, so ``observe`` never waits for more than one copy; clustering and scoring use the copies."""
        t0 = time.perf_counter()
        with self._lock:
            orgs = list(self._accounts)
        states: dict[str, AccountState] = {}
        own: dict[str, float] = {}  # each account's own score (its signal's, before rings)
        for org in orgs:
            with self._lock:
                acc = self._accounts.get(org)
                if acc is None or acc.current.state.n + (acc.previous.state.n if acc.previous else 0) < RING_MIN_N:
                    continue
                states[org], own[org] = self._recent(acc), self._own_score(acc)
        found: list[RingSignal] = []
        for ring in find_rings(list(states.values())):
            v = ring_vector(ring, states)
            p = self.model.probabilities(v)["distillation"]
            if p < self.ring_threshold:
                continue
            members = [m for m in ring.members if own[m] >= RING_MEMBER_FLOOR]
            if members:
                why = ring_reasons(ring, p) + feature_reasons(self.model, v, "distillation", top=3)
                found.append(RingSignal(ring, p, why, members))
        found.sort(key=lambda r: -r.score)
        by_member: dict[str, RingSignal] = {}
        for r in found:
            for m in r.flagged:
                by_member.setdefault(m, r)
        with self._lock:
            self._rings, self._ring_list = by_member, found
            self.last_ring_scan = time.time()
            self.ring_scan_seconds = time.perf_counter() - t0
        return found

    def _scored(self, acc: _Account) -> list[_Window]:
        """(under the lock) The account's windows that have a score (the current one is scored from 5 requests)."""
        cur, prev = acc.current, acc.previous
        if cur.vector is None and cur.state.n >= 5:
            self._score(cur)
        return [w for w in (cur, prev) if w is not None and w.vector is not None]

    def _own_score(self, acc: _Account) -> float:
        """(under the lock) The account's own score: its windows' and sub-streams', without rings (``signals``)."""
        return max((w.score for w in self._scored(acc)), default=0.0)

    @property
    def accounts(self) -> int:
        """Accounts with windows held."""
        return len(self._accounts)

    @property
    def ring_count(self) -> int:
        """Rings flagged by the last scan."""
        return len(self._ring_list)

    def ring_members(self, ring_id: str) -> list[str]:
        """The members a ring of the last scan flags ([] for a ring not flagged at the last scan)."""
        with self._lock:
            return next((list(r.flagged) for r in self._ring_list if r.ring.id == ring_id), [])

    def rings(self) -> list[dict[str, Any]]:
        """The rings at or above the ring threshold at the last scan, highest score first."""
        with self._lock:
            return [r.to_json() for r in self._ring_list]
