"""Batch detection: traffic records → per-account verdicts with reasons, rings scored as a whole.

Records are streamed once; each account (and each of its API keys, so a harvesting key hidden inside a busy benign
account is judged on its own) is scored at growing checkpoints (50, 100, 150 ... requests: windows that grow with
the account), which gives both the account's score (the highest) and how many requests it took to flag it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .account import AccountState
from .bench import BenchmarkIndex, default_index
from .features import RequestFeatures, extract
from .model import DEFAULT_TARGET_FPR, ScoringModel
from .reasons import example_reasons, feature_reasons, ring_reasons
from .rings import Ring, find_rings, merged

CHECKPOINTS: tuple[int, ...] = (50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 5000, 10000, 20000)
MIN_STREAM = 50  # a key stream is scored on its own from this many requests
EVAL_PROBABILITY = 0.5


@dataclass
class AccountResult:
    org: str
    score: float  # highest P(distillation) over the account's checkpoints, key streams and ring
    label: str  # benign | distillation | evaluation
    flagged: bool
    ring: str | None
    requests: int
    reasons: list[str]
    flagged_after: int | None = None  # requests seen when the score first crossed the threshold
    probabilities: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org, "score": round(self.score, 6), "label": self.label, "flagged": self.flagged,
            "ring": self.ring, "requests": self.requests, "reasons": self.reasons,
            "flagged_after": self.flagged_after,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
        }


@dataclass
class Report:
    accounts: list[AccountResult]
    rings: list[Ring]
    threshold: float
    target_fpr: float
    records: int

    def to_json(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"accounts": [a.to_json() for a in self.accounts]}
        if metrics is not None:
            out["metrics"] = metrics
        return out


class Tracked:
    """An account or key stream with its checkpoint history."""

    __slots__ = ("best", "best_vector", "first_flag", "next_cp", "state")

    def __init__(self, name: str) -> None:
        self.state = AccountState(name)
        self.best = 0.0
        self.best_vector: dict[str, float] | None = None
        self.first_flag: int | None = None
        self.next_cp = 0


class Detector:
    """Scores accounts with the shipped (or a given) model at a target account-level FPR."""

    def __init__(
        self,
        model: ScoringModel | None = None,
        target_fpr: float = DEFAULT_TARGET_FPR,
        bench: BenchmarkIndex | None = None,
        rings: bool = True,
    ) -> None:
        self.model = model or ScoringModel.load()
        self.target_fpr = target_fpr
        self.threshold = self.model.threshold(target_fpr)
        self.bench = bench if bench is not None else default_index()
        self.use_rings = rings

    # -- per stream -----------------------------------------------------------------------------------------------
    def _checkpoint(self, t: Tracked) -> None:
        v = t.state.vector()
        p = self.model.probabilities(v)["distillation"]
        if t.best_vector is None or p > t.best:
            t.best, t.best_vector = p, v
        if t.first_flag is None and p >= self.threshold:
            t.first_flag = t.state.n

    def _add(self, t: Tracked, f: Any) -> None:
        t.state.add(f)
        if t.next_cp < len(CHECKPOINTS) and t.state.n == CHECKPOINTS[t.next_cp]:
            t.next_cp += 1
            self._checkpoint(t)

    # -- whole run ------------------------------------------------------------------------------------------------
    def run(self, records: Iterable[dict[str, Any]]) -> Report:
        return self.run_features((org, extract(rec, self.bench)) for rec in records if (org := rec.get("org")))

    def run_features(self, items: Iterable[tuple[str, RequestFeatures]]) -> Report:
        """Like ``run`` over already extracted ``(org, features)`` pairs in time order (training re-uses them)."""
        orgs: dict[str, Tracked] = {}
        keys: dict[tuple[str, str], Tracked] = {}
        count = self.consume(items, orgs, keys)
        return self.finish(orgs, keys, count)

    def consume(self, items: Iterable[tuple[str, RequestFeatures]], orgs: dict[str, Tracked],
                keys: dict[tuple[str, str], Tracked]) -> int:
        """Feed ``(org, features)`` pairs into the account and key trackers; returns how many were fed."""
        count = 0
        for org, f in items:
            count += 1
            t = orgs.get(org)
            if t is None:
                t = orgs[org] = Tracked(org)
            self._add(t, f)
            k = keys.get((org, f.key))
            if k is None:
                k = keys[(org, f.key)] = Tracked(org)
            self._add(k, f)
        return count

    def finish(self, orgs: dict[str, Tracked], keys: dict[tuple[str, str], Tracked], count: int) -> Report:
        for t in orgs.values():
            if t.state.n < 5 or t.state.n not in CHECKPOINTS:
                self._checkpoint(t)
        streams: dict[str, list[Tracked]] = {}
        for (org, _), k in keys.items():
            streams.setdefault(org, []).append(k)
        results: dict[str, AccountResult] = {}
        for org, t in orgs.items():
            ks = streams.get(org, [])
            best_key = None
            if len(ks) > 1:
                for k in ks:
                    if k.state.n >= MIN_STREAM:
                        if k.state.n not in CHECKPOINTS:
                            self._checkpoint(k)
                        if k.best > t.best and (best_key is None or k.best > best_key.best):
                            best_key = k
            results[org] = self._verdict(t, best_key)
        rings = find_rings([t.state for t in orgs.values()]) if self.use_rings else []
        for ring in rings:
            self._apply_ring(ring, orgs, results)
        accounts = sorted(results.values(), key=lambda a: (-a.score, a.org))
        return Report(accounts, rings, self.threshold, self.target_fpr, count)

    def _verdict(self, t: Tracked, key_stream: Tracked | None) -> AccountResult:
        final = t.state.vector()
        probs = self.model.probabilities(final)
        src = key_stream or t
        score = max(t.best, src.best)
        vec = src.best_vector or final
        flagged = score >= self.threshold
        first = src.first_flag if key_stream is not None else t.first_flag
        if flagged:
            label = "distillation"
        elif probs["evaluation"] >= EVAL_PROBABILITY:
            label = "evaluation"
        else:
            label = "benign"
        reasons: list[str] = []
        if flagged:
            if key_stream is not None:
                reasons.append(f"one API key's stream ({key_stream.state.n} of {t.state.n} requests) scores "
                               f"{key_stream.best:.3f} on its own")
            reasons += feature_reasons(self.model, vec, "distillation")
            reasons += example_reasons(src.state)
        elif label == "evaluation":
            reasons += feature_reasons(self.model, final, "evaluation")
            reasons += example_reasons(t.state)
        else:
            top = feature_reasons(self.model, final, "benign", top=2)
            reasons += top
        return AccountResult(
            org=t.state.org, score=score, label=label, flagged=flagged, ring=None, requests=t.state.n,
            reasons=reasons, flagged_after=first if flagged else None, probabilities=probs, features=final,
        )

    def _apply_ring(self, ring: Ring, orgs: dict[str, Tracked], results: dict[str, AccountResult]) -> None:
        acc = merged([orgs[m].state for m in ring.members], ring)
        v = acc.vector()
        p = self.model.probabilities(v)["distillation"]
        if p < self.threshold:
            return
        why = ring_reasons(ring, p) + feature_reasons(self.model, v, "distillation", top=3)
        for m in ring.members:
            r = results[m]
            r.ring = ring.id
            if not r.flagged:
                r.flagged = True
                r.label = "distillation"
                r.flagged_after = r.requests
                r.reasons = why + example_reasons(orgs[m].state, limit=1)
            else:
                r.reasons = why[:2] + r.reasons
            r.score = max(r.score, p)
