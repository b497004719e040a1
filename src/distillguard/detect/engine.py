"""Batch detection: traffic records → per-account verdicts with reasons, rings scored as a whole.

Records are streamed once; each account is scored at growing checkpoints (50, 100, 150 ... requests: windows that
grow with the account), which gives both the account's score (the highest) and how many requests it took to flag it.

A harvesting job hidden inside a busy benign account (5% of its traffic) disappears in the account's averages, so
each account is also split into *sub-streams*, each scored as a pseudo-account of its own:

- ``k:`` one API key;
- ``c:`` one client program (user agent, model, system prompt skeleton, which sampling parameters are set:
  ``features._client``), and ``r:`` one route (model + system prompt only, so one program on several keys or SDKs
  stays together);
- ``t`` the account's *templated single-shot* requests: single-turn prompts, not exact repeats, whose masked
  scaffold head or tail the account has already used twice (many independent prompts poured into a reused
  scaffold, which is what harvesting is, whichever client sends them).

A sub-stream is scored from ``MIN_SUB`` requests on, and only while it is a minority of the account (the whole
account is scored anyway). More sub-streams mean more chances for a benign account to trip, so the flag threshold is
calibrated on the *maximum* over an account's checkpoints and sub-streams (``train.calibrate`` runs this detector
over the benign dev accounts), which keeps the account-level FPR.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .account import AccountState
from .bench import BenchmarkIndex, default_index
from .continuity import ServedAnswers
from .features import RequestFeatures, extract
from .model import DEFAULT_TARGET_FPR, FAMILIES, ScoringModel, family, rescale
from .reasons import example_reasons, feature_reasons, ring_reasons
from .rings import Ring, find_rings, merged

CHECKPOINTS: tuple[int, ...] = (50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 5000, 10000, 20000)
MIN_STREAM = 50  # a key stream is scored on its own from this many requests
MIN_SUB = 10  # a client / route / templated sub-stream is scored from this many requests
SUB_CHECKPOINTS: tuple[int, ...] = (10, 15, 20, 30, 40, *CHECKPOINTS)
SUB_MAX_SHARE = 0.8  # ... while it is at most this share of its account
MAX_SUBSTREAMS = 24  # client/route sub-streams tracked per account (later programs are not split out)
EVAL_PROBABILITY = 0.5
RING_MEMBER_FLOOR = 0.5  # a ring flags only members at least this harvest-like on their own
STREAM_KINDS = {"k": "one API key's stream", "c": "one client program's stream (user agent, model, system prompt, "
                "parameters)", "r": "one route's stream (model + system prompt)",
                "t": "the account's templated single-shot requests"}


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
    purposes: list[str] | None = None  # the org's declared purposes, when known (``declared.annotate``)

    def to_json(self) -> dict[str, Any]:
        out = {
            "org": self.org, "score": round(self.score, 6), "label": self.label, "flagged": self.flagged,
            "ring": self.ring, "requests": self.requests, "reasons": self.reasons,
            "flagged_after": self.flagged_after,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
        }
        if self.purposes is not None:
            out["purposes"] = list(self.purposes)
        return out


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
    """An account or one of its sub-streams, with its checkpoint history."""

    __slots__ = ("best", "best_vector", "first_flag", "first_key", "next_cp", "routes", "served", "sharing", "state",
                 "subs", "thr")

    def __init__(self, name: str, thr: float = 0.5) -> None:
        self.state = AccountState(name)
        self.thr = thr  # the flag threshold of the stream's family
        self.best = 0.0
        self.best_vector: dict[str, float] | None = None
        self.first_flag: int | None = None  # account requests seen when the stream first crossed the threshold
        self.next_cp = 0
        self.subs = 0  # (accounts) client/route sub-streams opened
        self.first_key: str | None = None  # (accounts) the only key seen so far: its stream is the account's
        self.routes: dict[int, str] = {}  # (accounts) route → its only client so far: its stream is the client's
        # (accounts) sub-streams that have had every request of the account so far: they share its state object
        # instead of repeating each update (``Detector.consume``), until a request of the account is not theirs.
        self.sharing: list[tuple[str, Tracked]] = []
        self.served: ServedAnswers | None = None  # (accounts) answers served to the account (``continuity``)

    def fork(self, thr: float, checkpoints: tuple[int, ...]) -> Tracked:
        """A copy of this stream so far, that goes on separately (a sub-stream that was identical until now)."""
        t = Tracked(self.state.org, thr)
        t.state.members = []
        t.state.merge(self.state)
        t.best, t.best_vector, t.first_flag = self.best, self.best_vector, self.first_flag
        t.next_cp = bisect.bisect_right(checkpoints, t.state.n)
        return t

    def unshare(self, keep: tuple[str, str]) -> None:
        """(accounts) Give each sharing sub-stream whose id is not in ``keep`` a copy of the account's state so far:
        the next request is not theirs. A sharing stream has as many requests as its account, so it was never
        scored (sub-streams are scored only as a minority of their account) and only its state and checkpoint
        position are owed."""
        unshare(self, keep)


def unshare(owner: Any, keep: tuple[str, str]) -> None:
    """Give each of ``owner.sharing``'s (id, sub-stream) not in ``keep`` its own copy of ``owner.state`` so far,
    positioned at its next sub-stream checkpoint; the others go on sharing (an account or an online window)."""
    still = []
    for sid, sub in owner.sharing:
        if sid in keep:
            still.append((sid, sub))
        else:
            sub.state = owner.state.copy()
            sub.next_cp = bisect.bisect_right(SUB_CHECKPOINTS, sub.state.n)
    owner.sharing = still


def ring_vector(ring: Ring, states: Mapping[str, AccountState]) -> dict[str, float]:
    """The ring's pseudo-account features (``states``: at least its members'). ``dup_prompt`` is the members' own
    (request-weighted) duplicate share: the model learnt it within accounts, and prompts repeated *across* members
    are not an account's repeats."""
    members = [states[m] for m in ring.members]
    v = merged(members, ring).vector()
    tot = sum(s.n for s in members) or 1
    v["dup_prompt"] = sum(s.n - min(s.n, len(s.prompts)) for s in members) / tot
    return v


def templated(acc: AccountState, f: RequestFeatures, repeat: bool) -> bool:
    """Whether ``f`` (already added to ``acc``) is a single-shot prompt, not a ``repeat`` of an earlier one, in a
    scaffold the account has used at least twice before."""
    if repeat or f.turns > 1:
        return False
    return bool((f.head and acc.heads[f.head] >= 3) or (f.tail and acc.tails[f.tail] >= 3))


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
        self.thresholds = {f: self.model.threshold(target_fpr, f) for f in FAMILIES}
        self.threshold = self.thresholds["account"]
        self.ring_threshold = self.model.ring_threshold(target_fpr)
        self.bench = bench if bench is not None else default_index()
        self.use_rings = rings

    # -- per stream -----------------------------------------------------------------------------------------------
    def _checkpoint(self, t: Tracked, account_n: int | None = None) -> None:
        v = t.state.vector(timing=False)
        p = self.model.probabilities(v)["distillation"]
        if t.best_vector is None or p > t.best:
            v.update(t.state.timing_vector())  # unscored, shown with the best checkpoint's reasons
            t.best, t.best_vector = p, v
        if t.first_flag is None and p >= t.thr:
            t.first_flag = account_n or t.state.n

    def _add(self, t: Tracked, f: Any, account_n: int | None = None) -> None:
        t.state.add(f)
        if t.next_cp < len(CHECKPOINTS) and t.state.n == CHECKPOINTS[t.next_cp]:
            t.next_cp += 1
            self._checkpoint(t, account_n)

    def _add_sub(self, s: Tracked, f: Any, account_n: int) -> None:
        s.state.add(f)
        n = s.state.n
        if s.next_cp < len(SUB_CHECKPOINTS) and n == SUB_CHECKPOINTS[s.next_cp]:
            s.next_cp += 1
            if n <= SUB_MAX_SHARE * account_n:
                self._checkpoint(s, account_n)

    # -- whole run ------------------------------------------------------------------------------------------------
    def run(self, records: Iterable[dict[str, Any]]) -> Report:
        return self.run_features((org, extract(rec, self.bench)) for rec in records if (org := rec.get("org")))

    def run_features(self, items: Iterable[tuple[str, RequestFeatures]]) -> Report:
        """Like ``run`` over already extracted ``(org, features)`` pairs in time order (training re-uses them)."""
        orgs: dict[str, Tracked] = {}
        keys: dict[tuple[str, str], Tracked] = {}
        count = self.consume(items, orgs, keys)
        return self.finish(orgs, keys, count)

    # Off only in tests, to check that sharing states (``Tracked.sharing``) changes no result.
    share_streams: bool = True

    def consume(self, items: Iterable[tuple[str, RequestFeatures]], orgs: dict[str, Tracked],
                keys: dict[tuple[str, str], Tracked]) -> int:
        """Feed ``(org, features)`` pairs into the account and key trackers; returns how many were fed."""
        count = 0
        share = self.share_streams
        for org, f in items:
            count += 1
            t = orgs.get(org)
            if t is None:
                t = orgs[org] = Tracked(org, self.threshold)
                t.served = ServedAnswers()
            f = t.served.check(f)  # type: ignore[union-attr]
            acc = t.state
            csid = f"c:{f.client}"
            rsid = f"r:{f.route}"
            for sid, _ in t.sharing:
                if sid != csid and sid != rsid:
                    t.unshare((csid, rsid))
                    break
            repeat = f.prompt_hash in acc.prompts
            # A key's stream is the account's until a second key shows up, and a route's stream is its client's until
            # a second client uses the route: such streams are forked then, not kept twice all along.
            first = t.first_key
            if first is None:
                first = t.first_key = f.key
            first_sid = (org, "k:" + first)
            if f.key != first and first_sid not in keys:
                keys[first_sid] = t.fork(self.threshold, CHECKPOINTS)
            self._add(t, f)
            n = acc.n
            if first_sid in keys:
                k = keys.get((org, "k:" + f.key))
                if k is None:
                    k = keys[(org, "k:" + f.key)] = Tracked(org, self.threshold)
                self._add(k, f, n)
            c = keys.get((org, csid))
            if c is None and t.subs < MAX_SUBSTREAMS:
                t.subs += 1
                c = keys[(org, csid)] = Tracked(org, self.thresholds["program"])
                if share and n == 1:  # the account's first request: the client's stream is the account's so far
                    c.state = acc
                    t.sharing.append((csid, c))
            if c is not None and c.state is not acc:
                self._add_sub(c, f, n)
            r = keys.get((org, rsid))
            if r is None:
                owner = t.routes.setdefault(f.route, csid)
                if owner != csid and t.subs < MAX_SUBSTREAMS and (org, owner) in keys:
                    t.subs += 1
                    r = keys[(org, rsid)] = keys[(org, owner)].fork(self.thresholds["program"], SUB_CHECKPOINTS)
                    self._add_sub(r, f, n)
                    # every request so far on this route (the fork sorts ``times``: shared only if that changed nothing)
                    if share and r.state.n == n and r.state.times == acc.times:
                        r.state = acc
                        t.sharing.append((rsid, r))
            elif r.state is not acc:
                self._add_sub(r, f, n)
            if templated(acc, f, repeat):
                s = keys.get((org, "t"))
                if s is None:
                    s = keys[(org, "t")] = Tracked(org, self.thresholds["templated"])
                self._add_sub(s, f, n)
        return count

    def finish(self, orgs: dict[str, Tracked], keys: dict[tuple[str, str], Tracked], count: int) -> Report:
        return self.report(orgs, self.verdicts(orgs, keys), count)

    def verdicts(self, orgs: dict[str, Tracked], keys: dict[tuple[str, str], Tracked]) -> dict[str, AccountResult]:
        """Each account's own verdict (its checkpoints and sub-streams, before rings): needs nothing of the other
        accounts, so ``parallel`` runs it in the workers and sends only accounts, never sub-streams, back."""
        for t in orgs.values():
            if t.state.n < 5 or t.state.n not in CHECKPOINTS:
                self._checkpoint(t)
        streams: dict[str, list[tuple[str, Tracked]]] = {}
        for (org, sid), k in keys.items():
            streams.setdefault(org, []).append((sid, k))
        results: dict[str, AccountResult] = {}
        for org, t in orgs.items():
            n = t.state.n
            best: tuple[str, Tracked] | None = None
            best_score = 0.0
            n_keys = sum(1 for sid, _ in streams.get(org, ()) if sid.startswith("k:"))
            for sid, k in streams.get(org, ()):
                m = k.state.n
                if sid.startswith("k:"):
                    if n_keys < 2 or m < MIN_STREAM:
                        continue
                    if m not in CHECKPOINTS:
                        self._checkpoint(k, n)
                elif m >= MIN_SUB and m <= SUB_MAX_SHARE * n and m not in SUB_CHECKPOINTS:
                    self._checkpoint(k, n)
                if k.best_vector is not None:
                    sc = rescale(k.best, k.thr, self.threshold)
                    if sc > t.best and (best is None or sc > best_score):
                        best, best_score = (sid, k), sc
            results[org] = self._verdict(t, best)
        return results

    def report(self, orgs: dict[str, Tracked], results: dict[str, AccountResult], count: int) -> Report:
        """The report from the accounts' own verdicts: candidate rings (over ``orgs`` in first-seen order) scored and
        applied to their members."""
        rings = find_rings([t.state for t in orgs.values()]) if self.use_rings else []
        for ring in rings:
            self._apply_ring(ring, orgs, results)
        accounts = sorted(results.values(), key=lambda a: (-a.score, a.org))
        return Report(accounts, rings, self.threshold, self.target_fpr, count)

    def _verdict(self, t: Tracked, sub: tuple[str, Tracked] | None) -> AccountResult:
        final = t.state.vector()
        probs = self.model.probabilities(final)
        key_stream = sub[1] if sub is not None else None
        src = key_stream or t
        score = max(t.best, rescale(src.best, src.thr, self.threshold))
        vec = src.best_vector or final
        flagged = score >= self.threshold
        firsts = [x for x in (t.first_flag, key_stream.first_flag if key_stream else None) if x is not None]
        first = min(firsts) if firsts else t.state.n
        if flagged:
            label = "distillation"
        elif probs["evaluation"] >= EVAL_PROBABILITY:
            label = "evaluation"
        else:
            label = "benign"
        reasons: list[str] = []
        if flagged:
            if sub is not None and key_stream is not None:
                what = STREAM_KINDS.get(sub[0].split(":")[0], "a sub-stream")
                reasons.append(f"{what} ({key_stream.state.n} of {t.state.n} requests) scores "
                               f"{key_stream.best:.3f} on its own ({family(sub[0])} threshold {key_stream.thr:.4f})")
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

    def ring_score(self, ring: Ring, orgs: dict[str, Tracked]) -> tuple[float, dict[str, float]]:
        v = ring_vector(ring, {m: orgs[m].state for m in ring.members})
        return self.model.probabilities(v)["distillation"], v

    def _apply_ring(self, ring: Ring, orgs: dict[str, Tracked], results: dict[str, AccountResult]) -> None:
        p, v = self.ring_score(ring, orgs)
        if p < self.ring_threshold:
            return
        why = ring_reasons(ring, p) + feature_reasons(self.model, v, "distillation", top=3)
        for m in ring.members:
            r = results[m]
            if r.score < RING_MEMBER_FLOOR and not r.flagged:
                continue  # a member that looks benign on its own is not flagged for its company
            r.ring = ring.id
            if not r.flagged:
                r.flagged = True
                r.label = "distillation"
                r.flagged_after = r.requests
                r.reasons = why + example_reasons(orgs[m].state, limit=1)
            else:
                r.reasons = why[:2] + r.reasons
            r.score = max(r.score, p)
