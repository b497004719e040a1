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
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from scipy.stats import binomtest

from ..watermark import Watermarker
from ..watermark.detect import Position, positions, score
from ..watermark.embed import _PAIR_RE
from ..watermark.keys import OrgKey
from ..watermark.scan import SENT_END_RE, WORD_RE, Protector
from ..watermark.walker import Slot, Walker, norm_word

PROBE_THRESHOLD = 1e-6
_BOS = "<s>"


_TOKEN_RE = re.compile(r"\n(?:\s*\n)?|[^\S\n]*\S+")


def lm_tokens(text: str) -> list[str]:
    """Words (punctuation stays on its word) and line breaks ("\\n", or "\\n\\n" for a paragraph break) as tokens.

    Keeping the lines matters: generated code and prose then stay on lines of their own, as in the
    training text, instead of one long line on which any code-like word protects the rest.
    """
    out = []
    for m in _TOKEN_RE.finditer(text):
        t = m.group(0)
        out.append(("\n\n" if t.count("\n") > 1 else "\n") if t[0] == "\n" else t.strip())
    return out


def lm_detokenize(tokens: Sequence[str]) -> str:
    parts: list[str] = []
    for t in tokens:
        if t[0] == "\n" or not parts or parts[-1][-1] == "\n":
            parts.append(t)
        else:
            parts.append(" " + t)
    return "".join(parts)


class NgramLM:
    """A word n-gram LM over :func:`lm_tokens` (words and line breaks), with simple backoff."""

    def __init__(self, order: int = 3) -> None:
        self.order = order
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._cache: dict[str, tuple[list[str], list[int]]] = {}

    def train(self, texts: Iterable[str]) -> NgramLM:
        for t in texts:
            words = [_BOS] * (self.order - 1) + lm_tokens(t)
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
        return lm_detokenize(out)

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
    sc = score(list(pos), key)
    return sc.p_value, sc.z, sc.trials


def _ranked(wm: Watermarker, org_ids: Sequence[str],
            test: Callable[[OrgKey], tuple[float, float, int]]) -> list[dict[str, Any]]:
    """Per org its best key's test, p-values Bonferroni-corrected over every key tried, most significant first."""
    orgs = list(dict.fromkeys(org_ids))
    n_keys = max(1, sum(len(wm.keys(o)) for o in orgs))
    rows = []
    for o in orgs:
        pv, z, trials = min((test(k) for k in wm.keys(o)), key=lambda t: (t[0], -t[1]))
        rows.append({"org": o, "p_value": min(1.0, pv * n_keys), "z": round(z, 3), "tokens_scored": trials})
    rows.sort(key=lambda r: (r["p_value"], -r["z"]))
    return rows


def probe_texts(texts: Iterable[str], wm: Watermarker, org_ids: Sequence[str],
                threshold: float = PROBE_THRESHOLD) -> dict[str, Any]:
    """The contract's probe answer: per org the corrected p-value; ``org`` the detected one (or None)."""
    pos = pooled_positions(texts, wm)
    rows = _ranked(wm, org_ids, lambda k: _test(pos, k))
    total = sum(1 if p.size == 2 else 2 for p in pos)
    best = rows[0] if rows else None
    detected = best is not None and best["p_value"] < threshold
    return {"detected": detected, "org": best["org"] if detected else None, "tokens_scored": total, "orgs": rows}


# ---- reference (white-box) test ------------------------------------------------------------------
VariantCounts = dict[tuple[str, int], list[int]]


class _LineProtector(Protector):
    """The watermark's protection, but code mode and code fences end with their line.

    Model generations (an n-gram LM's above all) mix prose and code lines freely; the embedder's sticky
    code mode would then drop all the prose after the first code-like line. Scoring more slots cannot
    bias the test: under the null the key is independent of the text wherever it is read.
    """

    def see(self, ws: str, chunk: str) -> tuple[bool, bool]:
        if "\n" in ws:
            self.code_mode, self.fence = False, None
        return super().see(ws, chunk)


def walk_slots(text: str, wm: Watermarker, record: Callable[[Slot], None]) -> None:
    """Every slot of a generation, to ``record`` (protection as :class:`_LineProtector`)."""
    w = Walker(wm.lexicon, lambda s: record(s))  # type: ignore[func-returns-value]
    w.prot = _LineProtector()
    for m in _PAIR_RE.finditer(text):
        w.pair(m.group(1), m.group(2))
    w.finish()


def variant_counts(texts: Iterable[str], wm: Watermarker) -> VariantCounts:
    """How often each variant of each set occurs in each context, over every scorable slot of ``texts``."""
    out: VariantCounts = {}

    def record(slot: Slot) -> None:
        if slot.detectable():
            c = out.get((slot.context, slot.alt.id))
            if c is None:
                c = out[(slot.context, slot.alt.id)] = [0] * len(slot.alt.variants)
            c[slot.index] += 1

    for t in texts:
        walk_slots(t, wm, record)
    return out


def lm_variant_counts(lm: NgramLM, wm: Watermarker) -> VariantCounts:
    """White-box read of a local n-gram model: how often it has seen each variant after each context word.

    Single-word variants come from the model's bigram counts, two-word ones from its trigram counts;
    raw tokens that normalise to the same context word are pooled. Contexts at a line start are skipped
    (the watermark's context there is the previous line's last word, which the model does not keep).
    """
    lex = wm.lexicon
    out: VariantCounts = {}

    def add(ctx: str, hit: tuple[int, int] | None, n: int, t1: str, trail: str) -> None:
        if hit is None:
            return
        sid, idx = hit
        a = lex.sets[sid]  # the embedder's rules that the counts can see (where it wrote nothing)
        if ((a.not_after and ctx in a.not_after) or (a.only_after and ctx not in a.only_after)
                or (a.mixed_article and ctx == "a") or (a.after_comma and not t1.endswith(","))
                or (a.start and t1 != _BOS and not SENT_END_RE.search(t1))
                or (a.comma and not trail.lstrip("*_)]\"”’'").startswith(","))):
            return
        c = out.get((ctx, sid))
        if c is None:
            c = out[(ctx, sid)] = [0] * len(lex.sets[sid].variants)
        c[idx] += n

    for t1, nxt in lm.counts.items():
        if not t1 or "\x1f" in t1 or t1[0] == "\n":
            continue
        ctx = "" if t1 == _BOS else norm_word(t1)
        for w, n in nxt.items():
            m = WORD_RE.match(w)
            if not m:
                continue
            word = m.group(2).lower().replace("’", "'")
            if (word,) in lex.phrases:
                add(ctx, lex.phrases[(word,)], n, t1, m.group(3))
            elif (word,) in lex.prefixes and not m.group(3):
                for w2, n2 in lm.counts.get(f"{t1}\x1f{w}", {}).items():
                    m2 = WORD_RE.match(w2)
                    if m2 and not m2.group(1):
                        add(ctx, lex.phrases.get((word, m2.group(2).lower().replace("’", "'"))), n2, t1,
                            m2.group(3))
    return out


def _shifts(suspect: VariantCounts, reference: VariantCounts) -> list[tuple[str, int, list[float]]]:
    """Per (context, set) seen in both samples: suspect minus reference share of each variant."""
    out = []
    for k, cs in suspect.items():
        cr = reference.get(k)
        if cr is None:
            continue
        ns, nr = sum(cs), sum(cr)
        out.append((k[0], k[1], [a / ns - b / nr for a, b in zip(cs, cr, strict=True)]))
    return out


def _reference_test(shifts: Sequence[tuple[str, int, list[float]]], key: OrgKey) -> tuple[float, float, int]:
    """Sign test: per context and fair bit, did the suspect move toward the keyed variant more than the reference?

    A 2-variant set is one bit, a 4-variant set two (the halves of the set that share a bit of the keyed
    index against the other halves). Under the null the key is independent of both models, so each
    non-zero shift points toward the keyed half with probability exactly 1/2; zero shifts are dropped.
    """
    hits = trials = 0
    for ctx, sid, d in shifts:
        g = key.choice(ctx, sid, len(d))
        for b in (1, 2) if len(d) == 4 else (1,):
            toward = sum(x if (v & b) == (g & b) else -x for v, x in enumerate(d))
            if abs(toward) > 1e-12:
                trials += 1
                hits += toward > 0
    if not trials:
        return 1.0, 0.0, 0
    pv = float(binomtest(hits, trials, 0.5, alternative="greater").pvalue)
    return pv, (hits - trials / 2) / math.sqrt(trials / 4), trials


def probe_models(suspect: NgramLM, reference: NgramLM, wm: Watermarker, org_ids: Sequence[str],
                 threshold: float = PROBE_THRESHOLD) -> dict[str, Any]:
    """White-box probe of a local n-gram model against a reference model trained on clean text."""
    shifts = _shifts(lm_variant_counts(suspect, wm), lm_variant_counts(reference, wm))
    return _probe_rows(shifts, wm, org_ids, threshold)


def probe_reference(suspect_texts: Iterable[str], reference_texts: Iterable[str], wm: Watermarker,
                    org_ids: Sequence[str], threshold: float = PROBE_THRESHOLD) -> dict[str, Any]:
    """The probe answer from a suspect's generations compared with a clean reference model's generations.

    Each (context, set) counts once (dedupe); the reference removes the language's own preferences, so the
    test sees only the shift the suspect learned. Same shape as :func:`probe_texts`.
    """
    shifts = _shifts(variant_counts(suspect_texts, wm), variant_counts(reference_texts, wm))
    return _probe_rows(shifts, wm, org_ids, threshold)


def _probe_rows(shifts: Sequence[tuple[str, int, list[float]]], wm: Watermarker, org_ids: Sequence[str],
                threshold: float) -> dict[str, Any]:
    rows = _ranked(wm, org_ids, lambda k: _reference_test(shifts, k))
    best = rows[0] if rows else None
    detected = best is not None and best["p_value"] < threshold
    total = max((r["tokens_scored"] for r in rows), default=0)
    return {"detected": detected, "org": best["org"] if detected else None, "tokens_scored": total, "orgs": rows}


# ---- evaluation ----------------------------------------------------------------------------------
EVAL_SECRET = "distillguard-probe-eval"
EVAL_ORGS = ("org_suspect", "org_b", "org_c", "org_d", "org_e")


def _take(pool: Sequence[str], start: int, words: float) -> tuple[list[str], int]:
    out, n, i = [], 0, start
    while n < words and i < len(pool):
        out.append(pool[i])
        n += len(pool[i].split())
        i += 1
    return out, i


def evaluate(answers: Sequence[str], rates: Sequence[float] = (0.0, 0.01, 0.05, 0.10), clean_models: int = 100,
             train_words: int = 1_000_000, clean_words: int = 1_000_000, samples: int = 300, length: int = 120,
             seed: int = 7, log: Callable[[str], None] | None = None, null_groups: int = 0) -> dict[str, Any]:
    """Train n-gram LMs on corpora with a share of watermarked answers (org_suspect's key) and probe them.

    Per share, three tests of the same suspect model: ``p_value`` the black-box one (its samples alone,
    :func:`probe_texts`); ``p_reference`` the white-box one against a reference model trained on the same
    corpus without the watermarked answers (:func:`probe_models`); ``p_reference_indep`` the white-box
    one against a reference trained on a disjoint clean corpus of the same size. The watermarked answers
    are not otherwise in the corpus. ``clean_models`` clean suspects (other seeds and subsets) give each
    test's share of corrected p < 0.01: for the same-corpus reference the suspect is the reference's
    corpus plus 10% more clean answers (the null twin of the watermarked case).

    ``null_groups`` > 0 also tests each clean model against that many other random sets of five org keys:
    each set is one more draw of the null (the keys are independent of the model), so the share of corrected
    p < 0.01 over all of them estimates each test's false-positive rate far more tightly than 100 models can.
    """
    wm = Watermarker(EVAL_SECRET)
    rows = []
    for rate in rates:
        rng = random.Random(seed * 1000 + int(rate * 1000))
        pool = list(answers)
        rng.shuffle(pool)
        marked, i = _take(pool, 0, rate * train_words) if rate else ([], 0)
        clean, i = _take(pool, i, train_words - sum(len(a.split()) for a in marked))
        indep, _ = _take(pool, i, train_words)
        lm = NgramLM().train([wm.apply(a, EVAL_ORGS[0]) for a in marked] + clean)
        res = probe_texts(sample_model(lm, samples, seed, length), wm, EVAL_ORGS)
        mine = next(r for r in res["orgs"] if r["org"] == EVAL_ORGS[0])
        row: dict[str, Any] = {
            "rate": rate, "train_words": sum(len(a.split()) for a in marked + clean),
            "watermarked_words": sum(len(a.split()) for a in marked), "p_value": mine["p_value"], "z": mine["z"],
            "tokens_scored": res["tokens_scored"], "detected_org": res["org"]}
        for name, ref in (("reference", clean), ("reference_indep", indep)):
            r2 = probe_models(lm, NgramLM().train(ref), wm, EVAL_ORGS)
            m2 = next(r for r in r2["orgs"] if r["org"] == EVAL_ORGS[0])
            row |= {f"p_{name}": m2["p_value"], f"z_{name}": m2["z"], f"bits_{name}": m2["tokens_scored"],
                    f"org_{name}": r2["org"]}
        rows.append(row)
        if log:
            log(f"rate {rate:.0%}: samples p={row['p_value']:.3g} | reference p={row['p_reference']:.3g} "
                f"(bits {row['bits_reference']}) | independent reference p={row['p_reference_indep']:.3g} "
                f"(bits {row['bits_reference_indep']})")
    low = {"samples": 0, "reference": 0, "reference_indep": 0}
    min_p: dict[str, list[float]] = {k: [] for k in low}
    null_low = dict.fromkeys(low, 0)
    for m in range(clean_models):
        rng = random.Random(seed + 10_000 + m)
        pool = rng.sample(list(answers), len(answers))
        sub, i = _take(pool, 0, clean_words)
        extra, i = _take(pool, i, clean_words * 0.1)
        indep, _ = _take(pool, i, clean_words)
        lm = NgramLM().train(sub)
        pos = pooled_positions(sample_model(lm, max(50, samples // 3), seed + m, length), wm)
        counts = lm_variant_counts(lm, wm)
        tests: dict[str, Callable[[OrgKey], tuple[float, float, int]]] = {
            "samples": lambda k, pos=pos: _test(pos, k),
            "reference": _shift_test(_shifts(lm_variant_counts(NgramLM().train(sub + extra), wm), counts)),
            "reference_indep": _shift_test(_shifts(counts, lm_variant_counts(NgramLM().train(indep), wm)))}
        for k, test in tests.items():
            p = _ranked(wm, EVAL_ORGS, test)[0]["p_value"]
            min_p[k].append(p)
            low[k] += p < 0.01
            for g in range(null_groups):  # the same model against other orgs' keys: more draws of the null
                null_wm = Watermarker(f"{EVAL_SECRET}-null-{seed}-{m}-{g}")
                null_low[k] += _ranked(null_wm, EVAL_ORGS, test)[0]["p_value"] < 0.01
    if log and clean_models:
        log("clean models with corrected p < 0.01: " + ", ".join(f"{k} {v}/{clean_models}" for k, v in low.items()))
        if null_groups:
            log(f"same clean models against {null_groups} other random 5-org key sets each: "
                + ", ".join(f"{k} {v}/{clean_models * null_groups}" for k, v in null_low.items()))
    n = clean_models or 1
    return {"rates": rows, "clean_models": clean_models, "clean_below_0.01": low["samples"],
            "clean_share_below_0.01": low["samples"] / n if clean_models else 0.0,
            "clean_min_p": min(min_p["samples"]) if clean_models else None,
            "clean_below_0.01_by_test": low,
            "clean_min_p_by_test": {k: (min(v) if v else None) for k, v in min_p.items()},
            "null_groups": null_groups, "null_trials": clean_models * null_groups,
            "null_below_0.01_by_test": null_low}


def _shift_test(shifts: Sequence[tuple[str, int, list[float]]]) -> Callable[[OrgKey], tuple[float, float, int]]:
    return lambda k: _reference_test(shifts, k)
