"""Watermark radioactivity: does a suspect model's output carry an org's watermark it learned in training?

``probe_texts`` scores generations against every org's keys: the slots of all generations are pooled
with each (context, set) counted once (a model repeats itself; repeated contexts add no evidence), one
exact binomial test per key, Bonferroni-corrected over the keys tested. Generations come from a
black-box OpenAI-compatible endpoint (:func:`endpoint_generations`) or a local model file: a word
n-gram LM (:class:`NgramLM`, pure Python, saved as gzipped JSON), which is also what the evaluation
(:func:`evaluate`) trains on corpora with 0-10% watermarked answers to prove the test on real models.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from scipy.stats import binomtest

from ..watermark import Watermarker
from ..watermark.detect import Position, positions
from ..watermark.keys import OrgKey

PROBE_THRESHOLD = 1e-6
_BOS = "<s>"


class NgramLM:
    """A word n-gram LM over whitespace tokens (punctuation stays on its word), with simple backoff."""

    def __init__(self, order: int = 3) -> None:
        self.order = order
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._cache: dict[str, tuple[list[str], list[int]]] = {}

    def train(self, texts: Iterable[str]) -> NgramLM:
        for t in texts:
            words = [_BOS] * (self.order - 1) + t.split()
            for i in range(self.order - 1, len(words)):
                for k in range(self.order):  # every context length 0..order-1 (for backoff)
                    ctx = "\x1f".join(words[i - k : i]) if k else ""
                    self.counts[ctx][words[i]] += 1
        self._cache.clear()
        return self

    def _dist(self, ctx: str) -> tuple[list[str], list[int]] | None:
        d = self._cache.get(ctx)
        if d is None:
            c = self.counts.get(ctx)
            if not c:
                return None
            words = list(c)
            cum, s = [], 0
            for w in words:
                s += c[w]
                cum.append(s)
            d = (words, cum)
            self._cache[ctx] = d
        return d

    def generate(self, rng: random.Random, length: int = 120, start: Sequence[str] = ()) -> str:
        hist = [_BOS] * (self.order - 1) + list(start)
        out = list(start)
        for _ in range(length):
            d = None
            for k in range(self.order - 1, -1, -1):
                d = self._dist("\x1f".join(hist[len(hist) - k :]) if k else "")
                if d is not None:
                    break
            if d is None:
                break
            w = rng.choices(d[0], cum_weights=d[1])[0]
            out.append(w)
            hist.append(w)
        return " ".join(out)

    def save(self, path: str | Path) -> None:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump({"kind": "ngram", "order": self.order, "counts": self.counts}, f)

    @classmethod
    def load(cls, path: str | Path) -> NgramLM:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a distillguard n-gram model file ({e})") from e
        if d.get("kind") != "ngram":
            raise ValueError(f"{path}: not a distillguard n-gram model file")
        self = cls(int(d["order"]))
        for ctx, c in d["counts"].items():
            self.counts[ctx] = defaultdict(int, c)
        return self


def sample_model(lm: NgramLM, samples: int, seed: int = 0, length: int = 120) -> list[str]:
    rng = random.Random(seed)
    return [lm.generate(rng, length) for _ in range(samples)]


def endpoint_generations(url: str, prompts: Sequence[str], model: str | None = None, api_key: str | None = None,
                         max_tokens: int = 300, timeout: float = 60.0) -> list[str]:
    """One chat completion per prompt from an OpenAI-compatible server (``url`` is its base, e.g. .../v1)."""
    import httpx

    base = url.rstrip("/")
    if not base.endswith("/chat/completions"):
        base += "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    out: list[str] = []
    with httpx.Client(timeout=timeout) as client:
        for p in prompts:
            body: dict[str, Any] = {"messages": [{"role": "user", "content": p}], "max_tokens": max_tokens,
                                    "temperature": 1.0}
            if model:
                body["model"] = model
            r = client.post(base, json=body, headers=headers)
            r.raise_for_status()
            for ch in r.json().get("choices", []):
                out.append((ch.get("message") or {}).get("content") or "")
    return out


def pooled_positions(texts: Iterable[str], wm: Watermarker) -> list[Position]:
    """One slot per (context, set) over all texts, carrying the variant the texts use most there.

    Under the null the model's preferred variant in a context is independent of the key, so each
    distinct (context, set) is one fair draw however often it occurs; taking the modal variant (ties:
    the first seen) instead of the first occurrence reads the model's preference with less noise.
    """
    votes: dict[tuple[str, int], dict[int, int]] = {}
    first: dict[tuple[str, int], Position] = {}
    for t in texts:
        for p in positions(t, wm.lexicon):
            k = (p.context, p.set_id)
            first.setdefault(k, p)
            v = votes.setdefault(k, {})
            v[p.index] = v.get(p.index, 0) + 1
    out: list[Position] = []
    for k, p in first.items():
        v = votes[k]
        top = max(v.values())
        idx = p.index if v[p.index] == top else min(i for i, c in v.items() if c == top)
        out.append(Position(p.context, p.set_id, idx, p.size))
    return out


def _test(pos: Sequence[Position], key: OrgKey) -> tuple[float, float, int]:
    hits = trials = 0
    for p in pos:
        g = key.choice(p.context, p.set_id, p.size)
        if p.size == 2:
            trials += 1
            hits += g == p.index
        else:
            trials += 2
            hits += ((g ^ p.index) & 1 == 0) + ((g ^ p.index) & 2 == 0)
    if not trials:
        return 1.0, 0.0, 0
    pv = float(binomtest(hits, trials, 0.5, alternative="greater").pvalue)
    return pv, (hits - trials / 2) / math.sqrt(trials / 4), trials


def probe_texts(texts: Iterable[str], wm: Watermarker, org_ids: Sequence[str],
                threshold: float = PROBE_THRESHOLD) -> dict[str, Any]:
    """The contract's probe answer: per org the corrected p-value; ``org`` the detected one (or None)."""
    pos = pooled_positions(texts, wm)
    orgs = list(dict.fromkeys(org_ids))
    n_keys = max(1, sum(len(wm.keys(o)) for o in orgs))
    rows = []
    for o in orgs:
        pv, z, trials = min((_test(pos, k) for k in wm.keys(o)), key=lambda t: (t[0], -t[1]))
        rows.append({"org": o, "p_value": min(1.0, pv * n_keys), "z": round(z, 3), "tokens_scored": trials})
    rows.sort(key=lambda r: (r["p_value"], -r["z"]))
    total = sum(1 if p.size == 2 else 2 for p in pos)
    best = rows[0] if rows else None
    detected = best is not None and best["p_value"] < threshold
    return {"detected": detected, "org": best["org"] if detected else None, "tokens_scored": total, "orgs": rows}


# ---- evaluation ----------------------------------------------------------------------------------
EVAL_SECRET = "distillguard-probe-eval"
EVAL_ORGS = ("org_suspect", "org_b", "org_c", "org_d", "org_e")


def evaluate(answers: Sequence[str], rates: Sequence[float] = (0.0, 0.01, 0.05, 0.10), clean_models: int = 100,
             train_words: int = 200_000, clean_words: int = 50_000, samples: int = 300, length: int = 120,
             seed: int = 7, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train n-gram LMs on corpora with a share of watermarked answers (org_suspect's key) and probe them.

    ``answers`` are real answers; per model a random subset makes up ``train_words`` words, of which the
    given share (by words) are watermarked answers that are not otherwise in the corpus. Also trains
    ``clean_models`` small clean models (other seeds/subsets) and reports the share with p < 0.01.
    """
    wm = Watermarker(EVAL_SECRET)
    rows = []
    for rate in rates:
        rng = random.Random(seed * 1000 + int(rate * 1000))
        pool = list(answers)
        rng.shuffle(pool)
        corpus, marked_words, words, i = [], 0, 0, 0
        while words < train_words and i < len(pool):
            a = pool[i]
            i += 1
            n = len(a.split())
            if marked_words < rate * train_words:
                corpus.append(wm.apply(a, EVAL_ORGS[0]))
                marked_words += n
            else:
                corpus.append(a)
            words += n
        lm = NgramLM().train(corpus)
        res = probe_texts(sample_model(lm, samples, seed, length), wm, EVAL_ORGS)
        mine = next(r for r in res["orgs"] if r["org"] == EVAL_ORGS[0])
        rows.append({"rate": rate, "train_words": words, "watermarked_words": marked_words,
                     "p_value": mine["p_value"], "z": mine["z"], "tokens_scored": res["tokens_scored"],
                     "detected_org": res["org"]})
        if log:
            log(f"rate {rate:.0%}: p={mine['p_value']:.3g} z={mine['z']} bits={res['tokens_scored']}")
    low = 0
    min_p = []
    for m in range(clean_models):
        rng = random.Random(seed + 10_000 + m)
        sub, words = [], 0
        for a in rng.sample(list(answers), len(answers)):
            sub.append(a)
            words += len(a.split())
            if words >= clean_words:
                break
        lm = NgramLM().train(sub)
        res = probe_texts(sample_model(lm, max(50, samples // 3), seed + m, length), wm, EVAL_ORGS)
        p = min(r["p_value"] for r in res["orgs"])
        min_p.append(p)
        low += p < 0.01
    if log and clean_models:
        log(f"clean models: {low}/{clean_models} with corrected p < 0.01")
    return {"rates": rows, "clean_models": clean_models, "clean_below_0.01": low,
            "clean_share_below_0.01": low / clean_models if clean_models else 0.0,
            "clean_min_p": min(min_p) if min_p else None}
