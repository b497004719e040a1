"""Per-account aggregates of request features, and the account-level feature vector the model scores.

``AccountState`` is incremental (``add`` one request at a time, O(1) amortised) so the batch detector and the online
detector share it; ``merge`` builds the pseudo-account of a ring. ``vector()`` is scale-free on purpose (shares,
logs of ratios): volume alone must not decide, so a slow drip and a small sybil member are judged by behaviour.
"""

from __future__ import annotations

import copy as _copy
import math
from array import array
from collections import Counter
from collections.abc import Iterable
from itertools import chain

import numpy as np

from .features import TOPIC_DIM, RequestFeatures
from .text import MARKER_BIT, MARKER_NAMES

FEATURE_NAMES: tuple[str, ...] = (
    "single_shot",
    "follow_up",
    *(f"m_{m}" for m in MARKER_NAMES),
    "any_marker",
    "scaffold_reuse",
    "dup_prompt",
    "topic_spread",
    "templated_breadth",
    "temp0",
    "n_multi",
    "log_completion",
    "out_in_ratio",
    "out_new_ratio",
    "long_max_tokens",
    "short_max_tokens",
    "bench",
    "prompt_len",
    "system_share",
    "answer_grounding",
)

FEATURE_HELP: dict[str, str] = {
    "single_shot": "share of single-turn requests",
    "follow_up": "share of turns that build on the previous answer",
    "any_marker": "share of fresh prompts (not follow-ups) with instruction-style markers",
    "scaffold_reuse": "share of prompts whose masked skeleton head/tail recurs ≥3 times",
    "top_scaffold": "share of the most common prompt scaffold",
    "dup_prompt": "share of exact duplicate prompts",
    "topic_spread": "topic spread (1 − mean pairwise cosine of hashed prompt words)",
    "iat_cv": "log coefficient of variation of inter-arrival times (low = machine-regular)",
    "burstiness": "burstiness (σ−μ)/(σ+μ) of inter-arrival times",
    "hour_entropy": "hour-of-day entropy (1 = flat around the clock; neutral when the account spans < 2 days)",
    "mean_depth": "log mean conversation depth (user turns per request)",
    "templated_breadth": "scaffold reuse × topic spread (one template filled with many topics)",
    "temp0": "share of temperature-0 requests",
    "n_multi": "share of requests asking n > 1 completions",
    "log_completion": "log mean completion tokens",
    "out_in_ratio": "log ratio completion/prompt tokens",
    "out_new_ratio": "log ratio completion tokens / new input tokens (the input net of earlier answers and of blocks "
                     "the account has sent before: a fixed system prompt or preamble, resent turns)",
    "long_max_tokens": "share of requests with max_tokens ≥ 1500",
    "short_max_tokens": "share of requests capping the answer at ≤ 300 tokens (a harvester wants whole answers)",
    "bench": "share of prompt probes matching public benchmark text",
    "prompt_len": "log mean prompt length (chars)",
    "system_share": "share of requests with a system prompt",
    "answer_grounding": "share of answers made almost wholly of the prompt's words (≤ 10% of word pairs new: a job "
                        "over the customer's data)",
}
for _m in MARKER_NAMES:
    FEATURE_HELP[f"m_{_m}"] = f"share of fresh prompts (not follow-ups) with marker '{_m}'"

# Computed (for reasons and reviewers) but not scored: ``top_scaffold`` ("one template means an allowed batch job" is
# a habit of the simulator's tenants, and a one-template harvesting ring exploits it) and the timing features
# ``iat_cv``, ``burstiness``, ``hour_entropy`` (benign relays run at steady machine rates, harvesters can pace like
# people, and live traffic compresses time: timing says how a client is scheduled, not what it collects).
# ``mean_depth`` is nearly collinear with ``single_shot`` (their weights cancelled out), so only the latter is scored.
# ``out_new_ratio`` (answers over the input the account writes anew, ``features.input_blocks``) is a model feature,
# but the shipped model predates it: trained beside ``out_in_ratio`` it got weight 0, and in its place it made
# padding useless to a harvester but cost ring recall (ADR 0007, "New input").
UNSCORED: tuple[str, ...] = ("top_scaffold", "iat_cv", "burstiness", "hour_entropy", "mean_depth")
# Parameter features: kept as capped shares (never counts of distinct values, which track a generator's habits).
PARAMETER_FEATURES: tuple[str, ...] = ("temp0", "n_multi", "long_max_tokens", "short_max_tokens")
HOUR_PRIOR = 0.8  # hour entropy assumed while an account's span is too short to show a day's rhythm
DIURNAL_MIN_S = 6 * 3600.0  # below this span, hour-of-day says nothing
DIURNAL_FULL_S = 48 * 3600.0  # from this span on, it is used as measured

# per marker bit pattern: (index, name) of each marker set, in MARKER_NAMES order
_SET_BITS: tuple[tuple[tuple[int, str], ...], ...] = tuple(
    tuple((i, m) for i, m in enumerate(MARKER_NAMES) if bits & MARKER_BIT[m]) for bits in range(1 << len(MARKER_NAMES))
)
_ALL_BITS = len(_SET_BITS) - 1
_FOLD_AT = 256  # pending requests' topic buckets are folded into the arrays in batches of this many
_FOLD_NUMPY_FROM = 8  # ... with numpy from this many on (below, the plain loop is cheaper)
_DF_DTYPE = np.dtype(f"i{array('l').itemsize}")
MAX_TIMES = 20000  # inter-arrival statistics over the most recent requests
MAX_SKELETONS = 64
MAX_EXAMPLES = 5
# An answer with at most this share of new word pairs is a near copy of its prompt (an extraction, a rewrite, a
# summary of the customer's own text). ``answer_grounding`` counts them rather than averaging novelty: the average
# moved with the corpus (which prompts carry their content), the share of near copies much less (ADR 0007).
NEAR_COPY = 0.1
MAX_SEEN_BLOCKS = 4096  # input block hashes remembered per account (then forgotten at once, and learnt again)
RENDERED_REPEATS = 2  # answers rendering one prompt text (a retry, a second engine) that count as grounded
MAX_RENDERED = 100000  # rendered prompt texts remembered per account (as prompt hashes are)


class AccountState:
    """Running aggregates of one account (or of a ring of accounts, after ``merge``)."""

    def __init__(self, org: str) -> None:
        self.org = org
        self.n = 0
        self.single = 0
        self.follow = 0
        self.system = 0
        self.marker_counts = [0] * len(MARKER_NAMES)
        self.any_marker = 0
        self.heads: Counter[int] = Counter()
        self.tails: Counter[int] = Counter()
        # kept with the counters: requests in heads / tails seen ≥ 3 times, and the largest count
        self.reuse_heads = self.reuse_tails = self.top_head = self.top_tail = 0
        self.prompts: set[int] = set()
        # per bucket: Σ norm (``topic``), Σ norm² (``topic_self``: each request's own share), requests using it
        # (``topic_df``); read through the properties, which first fold in the ``_pending`` requests' buckets
        self._topic = array("d", bytes(8 * TOPIC_DIM))
        self._topic_self = array("d", bytes(8 * TOPIC_DIM))
        self._topic_df = array("l", bytes(array("l").itemsize * TOPIC_DIM))
        self._pending: list[tuple[int, ...]] = []
        self.topic_n = 0
        self.times: list[float] = []
        self.hours = [0] * 24
        self.t_min = math.inf
        self.t_max = -math.inf
        self.turns = 0
        self.temps: Counter[float] = Counter()
        self.temp0 = 0
        self.n_multi = 0
        self.completion = 0
        self.prompt_tokens = 0
        self.in_chars = 0  # characters of all input messages
        self.own_chars = 0  # ... of the client's own (not the assistant's)
        self.repeat_chars = 0  # ... of blocks the account had sent before (``features.input_blocks``)
        self.seen_blocks: set[int] = set()
        self.long_max = 0
        self.short_max = 0
        self.bench = 0.0
        self.prompt_chars = 0
        self.novel = 0.0  # Σ answer novelty over the requests with an answer text
        self.novel_n = 0
        self.near_copy = 0  # answers with novelty ≤ NEAR_COPY
        self.rendered: dict[int, int] = {}  # rendering key -> answers rendering that prompt text (``add``)
        self.keys: set[str] = set()
        self.uas: Counter[str] = Counter()
        self.ips: Counter[str] = Counter()
        self.skeletons: dict[int, str] = {}  # by head key
        self.tail_skeletons: dict[int, str] = {}  # by tail key
        self.head_example: dict[int, str] = {}
        self.examples: dict[str, list[str]] = {}
        self.members: list[str] = [org]

    # -- updating -------------------------------------------------------------------------------------------------
    def add(self, f: RequestFeatures) -> None:
        # Runs once per request and stream (several streams per request in ``engine``): written for speed, with the
        # same arithmetic in the same order as the plain version (reductions are order-sensitive in floating point).
        self.n += 1
        turns = f.turns
        if turns <= 1:
            self.single += 1
        if f.follow_up:
            self.follow += 1
        if f.system:
            self.system += 1
        bits = f.bits
        if bits and not f.follow_up:  # a follow-up's wording is about the previous answer, not the harvest
            self.any_marker += 1
            counts = self.marker_counts
            examples = self.examples
            for i, name in _SET_BITS[bits & _ALL_BITS]:
                counts[i] += 1
                ex = examples.get(name)  # = self._example(name, f.id)
                if ex is None:
                    examples[name] = [f.id]
                elif len(ex) < MAX_EXAMPLES:
                    ex.append(f.id)
        head = f.head
        if head:
            c = self.heads[head] + 1
            self.heads[head] = c
            if c >= 3:
                self.reuse_heads += 3 if c == 3 else 1
            if c > self.top_head:
                self.top_head = c
            if head not in self.head_example and len(self.head_example) < 4096:
                self.head_example[head] = f.id
            if head not in self.skeletons and len(self.skeletons) < MAX_SKELETONS:
                self.skeletons[head] = f.skeleton
        tail = f.tail
        if tail:
            c = self.tails[tail] + 1
            self.tails[tail] = c
            if c >= 3:
                self.reuse_tails += 3 if c == 3 else 1
            if c > self.top_tail:
                self.top_tail = c
            if tail not in self.tail_skeletons and len(self.tail_skeletons) < MAX_SKELETONS:
                self.tail_skeletons[tail] = f.skeleton
        if len(self.prompts) < 100000:
            self.prompts.add(f.prompt_hash)
        if f.topic:
            pending = self._pending
            pending.append(f.topic)
            self.topic_n += 1
            if len(pending) >= _FOLD_AT:
                self._fold()
        ts = f.ts
        times = self.times
        times.append(ts)
        if len(times) > 2 * MAX_TIMES:
            del times[:MAX_TIMES]
        self.hours[int(ts // 3600) % 24] += 1
        if ts < self.t_min:  # = min(self.t_min, ts)
            self.t_min = ts
        if ts > self.t_max:  # = max(self.t_max, ts)
            self.t_max = ts
        self.turns += turns if turns > 1 else 1
        temp = f.temperature
        if temp is not None:
            self.temps[round(temp, 2)] += 1
            if temp == 0.0:
                self.temp0 += 1
        if f.n > 1:
            self.n_multi += 1
        self.completion += f.completion_tokens
        self.prompt_tokens += f.prompt_tokens
        self.in_chars += f.input_chars
        self.own_chars += f.own_chars
        blocks = f.blocks
        if blocks:
            seen = self.seen_blocks
            repeat = 0
            for i in range(0, len(blocks), 2):
                h = blocks[i]
                if h in seen:
                    repeat += blocks[i + 1]
                else:
                    seen.add(h)
            self.repeat_chars += repeat
            if len(seen) > MAX_SEEN_BLOCKS:
                seen.clear()
        mt = f.max_tokens
        if mt >= 1500:
            self.long_max += 1
        elif 0 < mt <= 300:
            self.short_max += 1
        if f.bench:
            self.bench += f.bench
            self._example("bench", f.id)
        self.prompt_chars += f.prompt_chars
        if f.novelty >= 0.0:
            key = f.rendered
            if key:  # the prompt's text in another language (a translation): grounded, while that text is new
                rendered = self.rendered
                seen = rendered.get(key, 0)
                if seen or len(rendered) < MAX_RENDERED:  # (when full, texts seen before are still counted)
                    rendered[key] = seen + 1
                novelty = 0.0 if seen < RENDERED_REPEATS else f.novelty
            else:
                novelty = f.novelty
            self.novel += novelty
            if novelty <= NEAR_COPY:
                self.near_copy += 1
            self.novel_n += 1
        self.keys.add(f.key)
        if len(self.uas) < 256:
            self.uas[f.ua] += 1
        if len(self.ips) < 256:
            self.ips[f.ip_prefix] += 1

    # -- topic buckets: folded in batches ------------------------------------------------------------------------
    @property
    def topic(self) -> array:
        self._fold()
        return self._topic

    @property
    def topic_self(self) -> array:
        self._fold()
        return self._topic_self

    @property
    def topic_df(self) -> array:
        self._fold()
        return self._topic_df

    def _fold(self) -> None:
        """Add the pending requests' buckets to the arrays: each request adds ``norm = 1/√(its buckets)`` to
        ``topic``, ``norm * norm`` to ``topic_self`` and 1 to ``topic_df`` in each of its buckets. The pending
        requests are summed per bucket first (``np.bincount``, in request order) and then added to the arrays: the
        same sums up to rounding, and deterministic (an account folds at the same points whatever the process)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if len(pending) < _FOLD_NUMPY_FROM:  # a few requests (small streams, checkpoints): numpy's set-up costs more
            topic, own, df = self._topic, self._topic_self, self._topic_df
            for buckets in pending:
                norm = 1.0 / math.sqrt(len(buckets))
                sq = norm * norm
                for b in buckets:
                    topic[b] += norm
                    own[b] += sq
                    df[b] += 1
            return
        lens = [len(t) for t in pending]
        norms = np.repeat(np.array([1.0 / math.sqrt(k) for k in lens]), lens)
        idx = np.fromiter(chain.from_iterable(pending), dtype=np.intp, count=len(norms))
        np.frombuffer(self._topic, dtype=np.float64)[:] += np.bincount(idx, norms, TOPIC_DIM)
        np.frombuffer(self._topic_self, dtype=np.float64)[:] += np.bincount(idx, norms * norms, TOPIC_DIM)
        np.frombuffer(self._topic_df, dtype=_DF_DTYPE)[:] += np.bincount(idx, None, TOPIC_DIM).astype(_DF_DTYPE)

    # -- pickling (batch workers send their accounts to the parent) ------------------------------------------------
    def __getstate__(self) -> dict[str, object]:
        """The topic arrays sent sparse: an account uses about half of the buckets, and the three dense arrays were
        four fifths of what a batch worker sends back. Lossless: every bucket with a non-zero bit pattern in any of
        the three arrays is sent with its exact values; the pending requests are sent as they are (unfolded)."""
        state = dict(vars(self))
        topic = np.frombuffer(self._topic, dtype=np.float64)
        own = np.frombuffer(self._topic_self, dtype=np.float64)
        df = np.frombuffer(self._topic_df, dtype=_DF_DTYPE)
        used = np.flatnonzero(topic.view(np.int64) | own.view(np.int64) | df.astype(np.int64, copy=False))
        state["_topic"] = (used.astype(np.uint16).tobytes(), topic[used].tobytes())
        state["_topic_self"] = own[used].tobytes()
        state["_topic_df"] = df[used].tobytes()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        idx_bytes, topic_bytes = state["_topic"]  # type: ignore[misc]
        used = np.frombuffer(idx_bytes, dtype=np.uint16)
        arrays = []
        for values, dtype, code in ((topic_bytes, np.float64, "d"), (state["_topic_self"], np.float64, "d"),
                                    (state["_topic_df"], _DF_DTYPE, "l")):
            arr = array(code, bytes(array(code).itemsize * TOPIC_DIM))
            np.frombuffer(arr, dtype=dtype)[used] = np.frombuffer(values, dtype=dtype)  # type: ignore[arg-type]
            arrays.append(arr)
        state["_topic"], state["_topic_self"], state["_topic_df"] = arrays
        self.__dict__.update(state)

    def _example(self, what: str, rid: str) -> None:
        ex = self.examples.setdefault(what, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(rid)

    def extend(self, feats: Iterable[RequestFeatures]) -> AccountState:
        for f in feats:
            self.add(f)
        return self

    def copy(self) -> AccountState:
        """An exact, independent copy (containers copied in order; ``merge`` into an empty state sorts ``times``)."""
        self._fold()
        dup = AccountState.__new__(AccountState)
        for name, value in vars(self).items():
            if name == "examples":
                value = {k: list(v) for k, v in value.items()}
            elif isinstance(value, (list, dict, set, array)):
                value = _copy.copy(value)
            setattr(dup, name, value)
        return dup

    def merge(self, other: AccountState, finish: bool = True) -> None:
        """Fold another account into this one (a ring's pseudo-account). Merging many: pass ``finish=False`` and
        call ``finish_merge`` after the last one (the times are then sorted and the scaffolds recounted once)."""
        self.n += other.n
        self.single += other.single
        self.follow += other.follow
        self.system += other.system
        self.marker_counts = [a + b for a, b in zip(self.marker_counts, other.marker_counts)]
        self.any_marker += other.any_marker
        self.heads.update(other.heads)
        self.tails.update(other.tails)
        self.prompts |= other.prompts
        pairs = ((self.topic, other.topic, np.float64), (self.topic_self, other.topic_self, np.float64),
                 (self.topic_df, other.topic_df, _DF_DTYPE))
        for mine, theirs, dtype in pairs:
            np.add(np.frombuffer(mine, dtype=dtype), np.frombuffer(theirs, dtype=dtype),
                   out=np.frombuffer(mine, dtype=dtype))  # element by element, as the loop over buckets did
        self.topic_n += other.topic_n
        self.times.extend(other.times)
        self.hours = [a + b for a, b in zip(self.hours, other.hours)]
        self.t_min = min(self.t_min, other.t_min)
        self.t_max = max(self.t_max, other.t_max)
        self.turns += other.turns
        self.temps.update(other.temps)
        self.temp0 += other.temp0
        self.n_multi += other.n_multi
        self.completion += other.completion
        self.prompt_tokens += other.prompt_tokens
        self.in_chars += other.in_chars
        self.own_chars += other.own_chars
        self.repeat_chars += other.repeat_chars
        self.seen_blocks |= other.seen_blocks  # (a fork goes on adding requests; a ring's pseudo-account does not)
        if len(self.seen_blocks) > MAX_SEEN_BLOCKS:
            self.seen_blocks.clear()
        self.long_max += other.long_max
        self.short_max += other.short_max
        self.bench += other.bench
        self.prompt_chars += other.prompt_chars
        self.novel += other.novel
        self.novel_n += other.novel_n
        self.near_copy += other.near_copy
        for key, c in other.rendered.items():
            self.rendered[key] = self.rendered.get(key, 0) + c
        self.keys |= other.keys
        self.uas.update(other.uas)
        self.ips.update(other.ips)
        for k, v in other.examples.items():
            for rid in v:
                self._example(k, rid)
        for h, sk in other.skeletons.items():
            if len(self.skeletons) < MAX_SKELETONS:
                self.skeletons.setdefault(h, sk)
        for h, sk in other.tail_skeletons.items():
            if len(self.tail_skeletons) < MAX_SKELETONS:
                self.tail_skeletons.setdefault(h, sk)
        for h, rid in other.head_example.items():
            self.head_example.setdefault(h, rid)
        self.members.extend(other.members)
        if finish:
            self.finish_merge()

    def finish_merge(self) -> None:
        """What ``merge`` leaves for the end: the latest times in order, and the scaffold counts."""
        self.times = sorted(self.times)[-2 * MAX_TIMES :]
        self.reuse_heads = sum(c for c in self.heads.values() if c >= 3)
        self.reuse_tails = sum(c for c in self.tails.values() if c >= 3)
        self.top_head = max(self.heads.values(), default=0)
        self.top_tail = max(self.tails.values(), default=0)

    def shed_rare_scaffolds(self) -> None:
        """Forget the skeleton texts and example ids of scaffolds used fewer than 3 times, and the input blocks seen.
        Everything read after the request stream (dominant scaffolds for rings, the top scaffold in reasons) asks for
        a scaffold used at least 3 times, and only ``add`` reads the blocks; ``parallel`` sheds the rest before
        sending an account from a worker to the parent."""
        heads, tails = self.heads, self.tails
        self.skeletons = {h: sk for h, sk in self.skeletons.items() if heads[h] >= 3}
        self.tail_skeletons = {h: sk for h, sk in self.tail_skeletons.items() if tails[h] >= 3}
        self.head_example = {h: rid for h, rid in self.head_example.items() if heads[h] >= 3}
        self.seen_blocks = set()  # read only while requests are added

    # -- reading --------------------------------------------------------------------------------------------------
    def top_scaffold(self) -> tuple[int, int]:
        """(hash, count) of the most common scaffold head, or (0, 0)."""
        if not self.heads:
            return 0, 0
        return self.heads.most_common(1)[0]

    def timing(self) -> tuple[float, float]:
        """(log CV, burstiness) of inter-arrival times; (0, 0) with fewer than 5 requests."""
        ts = sorted(self.times[-MAX_TIMES:])
        if len(ts) < 5:
            return 0.0, 0.0
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        mu = sum(gaps) / len(gaps)
        if mu <= 0:
            return -3.0, -1.0
        var = sum((g - mu) ** 2 for g in gaps) / len(gaps)
        sd = math.sqrt(var)
        cv = sd / mu
        return max(-3.0, min(3.0, math.log(cv + 1e-3))), (sd - mu) / (sd + mu)

    def topic_spread(self) -> float:
        """1 − mean pairwise cosine of the requests' content words, leaving out words in over half the requests.

        Words every request shares are the scaffold (a template's fixed text, a product's boilerplate), not the
        topic: a template filled with many subjects is broad, one subject asked many ways is narrow.
        """
        k = self.topic_n
        if k < 2:
            return 0.5
        x = np.frombuffer(self.topic, dtype=np.float64)
        s = np.frombuffer(self.topic_self, dtype=np.float64)
        d = np.frombuffer(self.topic_df, dtype=_DF_DTYPE)
        # over all buckets (an unused bucket adds 0), then without the few in over half the requests
        cross = float(x @ x) - float(s.sum())
        own = float(s.sum())
        common = np.flatnonzero(d > 0.5 * k)
        if len(common):
            xc, sc = x[common], s[common]
            cross -= float(xc @ xc) - float(sc.sum())
            own -= float(sc.sum())
        if own <= 1e-12 * k:
            return 0.0  # nothing but shared words
        mean_cos = cross / ((k - 1) * own)
        return max(0.0, min(1.0, 1.0 - mean_cos))

    def hour_entropy(self) -> float:
        """Hour-of-day entropy, blended towards ``HOUR_PRIOR`` unless the account spans enough hours.

        Traffic squeezed into minutes (a live demo, a short burst) has no diurnal pattern to measure.
        """
        tot = sum(self.hours)
        span = self.t_max - self.t_min
        if tot == 0 or span <= DIURNAL_MIN_S:
            return HOUR_PRIOR
        h = -sum(c / tot * math.log(c / tot) for c in self.hours if c) / math.log(24)
        w = min(1.0, (span - DIURNAL_MIN_S) / (DIURNAL_FULL_S - DIURNAL_MIN_S))
        return w * h + (1.0 - w) * HOUR_PRIOR

    def vector(self, timing: bool = True) -> dict[str, float]:
        """The account-level features (FEATURE_NAMES), all scale-free. Without ``timing`` the unscored timing
        features (``iat_cv``, ``burstiness``, ``hour_entropy``) are left out: a checkpoint needs them only when it is
        an account's best so far (they are shown with its reasons)."""
        n = max(self.n, 1)
        fresh = max(self.n - self.follow, 1)  # the denominator of the marker shares
        spread = self.topic_spread()
        reuse = max(self.reuse_heads, self.reuse_tails) / n
        top = max(self.top_head, self.top_tail) / n
        v = {
            "single_shot": self.single / n,
            "follow_up": self.follow / n,
            **{f"m_{m}": self.marker_counts[i] / fresh for i, m in enumerate(MARKER_NAMES)},
            "any_marker": self.any_marker / fresh,
            "scaffold_reuse": reuse,
            "top_scaffold": top,
            "dup_prompt": 1.0 - min(1.0, len(self.prompts) / n),
            "topic_spread": spread,
            "mean_depth": math.log(max(1.0, self.turns / n)),
            "templated_breadth": reuse * spread,
            "temp0": self.temp0 / n,
            "n_multi": self.n_multi / n,
            "log_completion": math.log1p(self.completion / n),
            "out_in_ratio": math.log((self.completion + 1) / (self.prompt_tokens + 1)),
            "out_new_ratio": math.log((self.completion + 1) / (self.new_input_tokens() + 1)),
            "long_max_tokens": self.long_max / n,
            "short_max_tokens": self.short_max / n,
            "bench": self.bench / n,
            "prompt_len": math.log1p(self.prompt_chars / n),
            "system_share": self.system / n,
            "answer_grounding": self.near_copy / self.novel_n if self.novel_n else 0.0,
            "requests": float(self.n),  # not a feature: the evidence behind the shares (``ScoringModel.evidence_k``)
        }
        if timing:
            v.update(self.timing_vector())
        return v

    def new_input_tokens(self) -> float:
        """The input tokens the account wrote anew: its input tokens times the share of its input characters that
        are its own and not blocks it had sent before. All of them when the records carry no message text."""
        if self.in_chars <= 0:
            return float(self.prompt_tokens)
        return self.prompt_tokens * max(0, self.own_chars - self.repeat_chars) / self.in_chars

    def timing_vector(self) -> dict[str, float]:
        """The timing features (computed for reasons and reviewers, not scored: see ``UNSCORED``)."""
        iat_cv, burst = self.timing()
        return {"iat_cv": iat_cv, "burstiness": burst, "hour_entropy": self.hour_entropy()}
