"""The speed-ups of the detector change no result: each fast path is checked against the plain computation it
replaces (marker regexes, skeleton masking, benchmark probes, topic sums, shared sub-stream states)."""

from __future__ import annotations

import math
import platform
import random
import re
import zlib
from array import array

import numpy as np
import pytest

from distillguard.detect.account import AccountState
from distillguard.detect.bench import BenchmarkIndex
from distillguard.detect.engine import Detector, Tracked
from distillguard.detect.features import extract
from distillguard.detect.online import OnlineDetector
from distillguard.detect import multiscan
from distillguard.detect.scripts import has_unsegmented, space_out
from distillguard.detect.text import _CODE as T_CODE
from distillguard.detect.text import _QUOTED as T_QUOTED
from distillguard.detect.text import _URL as T_URL
from distillguard.detect.text import (
    _ENTITY,
    _SCANNER,
    MARKER_BIT,
    _letter_runs,
    _marker_bits_re,
    marker_bits,
    mask,
    reference_marker_bits,
    reference_words,
    words,
)

from . import traffic as T

# phrases around the markers' alternatives, boundaries and prefilter needles
PHRASES = [
    "give 5 examples", "write three questions", "come up with 10 prompts", "list several ideas", "regenerate 2 items",
    "create a list of tasks", "provide twenty samples.", "step by step", "step-by-step", "show your work",
    "explain the reasoning", "in json", "as a table", "bulleted points", "bullet list", "numbered list", "format: x",
    "### instruction", "### response", "markdown", "csv", "yaml", "you are an", "you are a", "act as an",
    "pretend to be",
    "role-play", "roleplay", "role play", "imagine you are", "as an expert", "as a professional", "at least 300 words",
    "no fewer than 5 sentences", "in 3 paragraphs", "in-depth", "in depth", "long-form", "long form", "detailed",
    "thorough", "answer with only", "only the letter", "only a number", "final answer", "the answer is", "(a)", "a) ",
    "answer:", "answer: \n", "question:", "\nquestion:", "choices:", "choice:", "#### 7", "####7", "put your answer",
    "respond with just", "def foo(", "\ndef f(", "  def g(", "instruction:", "output :", "response:", "completion:",
    '"prompt":', "'input' :", '"output":', "jsonl", "training data", "synthetic dataset", "fine-tuning dataset",
    "training pairs", "question-answer pairs", "prompt/response pair", "an input and an output", "rewrite", "rephrase",
    "paraphrase", "simplify", "in other words", "another way", "different version", "for a child", "for a 5-year-old",
    "for a 5 year old", "eli5", "input", "output", "pair", "dataset", "example", "the work", "your work", "format:",
]
FILL = ["", " ", "  ", "\n", "\t", "\x1c", "\x1f", "\r", "\x0b", "x", "re", "s", "ed", "_", "'", "-", "9", ".", ",", ":", "é", "\u212a", "(", ")", '"', "#"]


def _generated(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts += [rng.choice(FILL), rng.choice(PHRASES), rng.choice(FILL)]
        out.append("".join(parts))
    return out


def _corpus_prompts() -> list[str]:
    return [m["content"] for msgs in sum(T.pools().values(), []) for m in msgs if m["content"]]


def test_fast_markers_equal_the_reference_markers():
    texts = [t[:600].lower() for t in _generated(20000, 1) + _corpus_prompts()]
    seen = scanned = 0
    for t in texts:
        ref = reference_marker_bits(t)
        assert marker_bits(t) == ref, t  # Hyperscan's one pass, where it answers
        assert _marker_bits_re(t) == ref, t  # the re-only path
        scanned += _SCANNER.matches(t) is not None
        seen |= ref
    assert seen == sum(MARKER_BIT.values())  # every marker was hit, so the comparison means something
    if _SCANNER.active:
        assert scanned > len(texts) // 2  # the ASCII texts went through Hyperscan


@pytest.mark.skipif(platform.machine() != "x86_64", reason="hyperscan is a dependency on x86-64 only")
def test_hyperscan_is_installed_where_it_is_a_dependency():
    assert multiscan.available() and _SCANNER.active


def test_multiscan_white_space_and_line_anchors_follow_re():
    pats = [re.compile(r"a\sb"), re.compile(r"^x$", re.MULTILINE), re.compile(r"end$"), re.compile(r"[^.\n]{3}!")]
    scanner = multiscan.MultiScanner(pats)
    texts = ["a\x1cb", "a\tb", "a\x00b", "q\nx\nz", "x\r\n", "the end\n", "the end\n\n", "ab\x1f!", "a.b!",
             "é a b", "end"]
    for t in texts:
        want = sorted(i for i, p in enumerate(pats) if p.search(t))
        got = scanner.matches(t)
        if got is None:
            assert not (scanner.active and t.isascii())
            continue
        assert sorted(got) == want, t
    with pytest.raises(ValueError):
        multiscan._for_hyperscan(r"[\s]")


def test_prefilter_gates_are_part_of_the_definition():
    # "only the letter" matches answer_format's regex, but none of its prefilter needles occurs
    assert marker_bits("reply with only the letter") == reference_marker_bits("reply with only the letter") == 0
    assert marker_bits("the answer is: only the letter b") & MARKER_BIT["answer_format"]


def test_words_equal_the_regex_words():
    rng = random.Random(3)
    pieces = ["it's", "'tis", "''", "'", "a", "b'", "x'y'z", "the", "don't", "rock'n'roll", "é", "naïve", "\u212a",
              "İ", "ab", "a1b", "z", "--", "o'", "'a", "word", "\ud800", " ", "\n", "9"]
    texts = ["".join(rng.choice(pieces) + rng.choice(["", " ", "'", "-"]) for _ in range(rng.randint(0, 40)))
             for _ in range(5000)]
    for t in texts + [p.lower() for p in _corpus_prompts()]:
        for limit in (3, 48, 300):
            assert words(t, limit) == reference_words(t, limit), (t, limit)


def _plain_mask(text: str) -> str:
    t = text[:600]
    for rx, ph in ((T_CODE, " <code> "), (T_URL, "<url>"), (T_QUOTED, "<q>"), (_ENTITY, "<e>"),
                   (re.compile(r"\d+(?:[.,:/]\d+)*"), "<n>")):
        t = rx.sub(ph, t)
    if has_unsegmented(t):  # each character of a script without spaces is a token
        t = space_out(t)
    return re.sub(r"\s+", " ", t).strip().lower()


def test_mask_equals_the_plain_substitutions():
    rng = random.Random(4)
    pieces = ["12", "3.5", "1,000", "10:30", "1/2", "٣", "²", "v2", "a", "Jane Doe", "x, Rome", '"q"', "'it'", "`c`", "糖水",
              "```py\nx=1\n```", "http://a.b/c", "a@b.io", " ", "\n", "\t", "\x1c", ".", ",", "é"]
    texts = ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 30))) for _ in range(4000)]
    for t in texts + _corpus_prompts():
        assert mask(t) == _plain_mask(t), t


def test_letter_runs():
    assert _letter_runs("a-b c'd é x9y \ud800z") == {b"a", b"b", b"c", b"d", b"x", b"y", b"z"}


def test_entity_pattern_equals_the_lookbehind_first_form():
    plain = re.compile(r"(?<=[a-z,;:] )[A-Z][\w'-]*(?: [A-Z][\w'-]*)*")
    rng = random.Random(2)
    words = ["Jane", "Doe", "the", "x,", "y;", "z:", "İstanbul", "O'Neil", "A-B", "ÉTÉ", "7", "\n", "Rust"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(5000)]
    for t in texts + _corpus_prompts()[:3000]:
        assert _ENTITY.sub("<e>", t) == plain.sub("<e>", t)


def _plain_overlap(index: BenchmarkIndex, prompt: str) -> float:
    w = re.findall(r"\w+", prompt[:1000].lower())
    m = len(w) - 8
    if m < 0:
        return 0.0
    pos = {0, m // 4, m // 2, 3 * m // 4, m}
    return min(1.0, sum(1 for i in pos if zlib.crc32(" ".join(w[i : i + 8]).encode()) in index._set) / 2)


def test_benchmark_overlap_equals_the_plain_computation():
    prompts = _corpus_prompts()
    index = BenchmarkIndex(prompts[::7])
    extra = ["Ünïcödé " + p for p in prompts[:200]] + ["a_b-c " * 40, "x" * 5, "Question: " + prompts[0]]
    hits = 0
    for p in prompts[:3000] + extra:
        got = index.overlap(p)
        assert got == _plain_overlap(index, p)
        hits += got > 0
    assert hits > 0


def _features(seed: int = 5) -> list:
    rng = random.Random(seed)
    return [extract(r) for r in T.chatter("o", 150, rng) + T.harvester("o", 150, rng)]


def test_topic_sums_and_spread_equal_the_per_request_loop():
    feats = _features()
    st = AccountState("o")
    topic, own, df = [0.0] * 1024, [0.0] * 1024, [0] * 1024
    for i, f in enumerate(feats, 1):
        st.add(f)
        if f.topic:
            norm = 1.0 / math.sqrt(len(f.topic))
            for b in f.topic:
                topic[b] += norm
                own[b] += norm * norm
                df[b] += 1
        if i % 37 in (0, 5) or i == len(feats):  # folds of 37 (numpy) and of 5 (plain loop) pending requests
            # the fold sums a batch per bucket before adding it: the same sums up to rounding
            assert list(st.topic_df) == df
            assert np.allclose(st.topic, topic, rtol=1e-12, atol=0) and np.allclose(st.topic_self, own, rtol=1e-12, atol=0)
            k, cross, mine = st.topic_n, 0.0, 0.0
            for x, s, d in zip(topic, own, df):
                if d and d <= 0.5 * k:
                    cross += x * x - s
                    mine += s
            want = 0.0 if mine <= 0.0 else max(0.0, min(1.0, 1.0 - cross / ((k - 1) * mine)))
            assert st.topic_spread() == pytest.approx(want, rel=1e-9, abs=1e-12)
            assert 0.0 < want < 1.0


def test_copy_is_exact_and_independent():
    feats = _features(6)
    st = AccountState("o").extend(feats[:200])
    dup = st.copy()
    assert dup.vector() == st.vector()
    for name, value in vars(st).items():
        mine = getattr(dup, name)
        assert mine == value and (type(mine) is type(value)), name
        if isinstance(value, (list, dict, set, array)):
            assert mine is not value, name
    st.extend(feats[200:])
    dup.extend(feats[200:])
    assert dup.vector() == st.vector() and dup.examples == st.examples and dup.heads == st.heads


def _recounted(st: AccountState) -> tuple[int, int, int, int]:
    return (sum(c for c in st.heads.values() if c >= 3), sum(c for c in st.tails.values() if c >= 3),
            max(st.heads.values(), default=0), max(st.tails.values(), default=0))


def test_scaffold_counts_kept_with_the_counters_equal_a_recount():
    """``reuse_*`` / ``top_*`` are kept up to date in ``add`` and ``merge`` instead of being recounted per vector."""
    feats = _features(7)
    st = AccountState("o")
    for i, f in enumerate(feats, 1):
        st.add(f)
        if i % 25 == 0:
            assert (st.reuse_heads, st.reuse_tails, st.top_head, st.top_tail) == _recounted(st)
    assert st.reuse_heads > 0 and st.top_head >= 3  # the harvester's template recurs
    other = AccountState("p").extend(_features(8))
    st.merge(other)
    assert (st.reuse_heads, st.reuse_tails, st.top_head, st.top_tail) == _recounted(st)
    v = st.vector()
    assert v["scaffold_reuse"] == max(_recounted(st)[:2]) / st.n and v["top_scaffold"] == max(_recounted(st)[2:]) / st.n


def _accounts(rng: random.Random) -> list[dict]:
    """One client; two clients on one route (then a third on another route); a second program on another route; a
    second key; a small account."""
    recs = T.harvester("solo", 120, rng)
    chat = T.chatter("route", 160, rng)
    for r in chat[60:]:
        r["user_agent"] = "MyApp/2.0"  # same model and system prompt: a second client on the same route
    recs += chat
    later = T.chatter("route2", 100, rng)  # ... and then a program on another route
    for r in later[40:]:
        r["user_agent"] = "MyApp/2.0"
    recs += later + [{**r, "ts": r["ts"] + 9e5} for r in T.harvester("route2", 60, rng)]
    recs += T.chatter("two", 120, rng) + [{**r, "id": r["id"] + "s", "ts": r["ts"] + 7000} for r in
                                          T.harvester("two", 40, rng)]
    recs += T.mixed("keys", 200, 0.2, rng)
    recs += T.harvester("tiny", 7, rng)
    return sorted(recs, key=lambda r: (r["ts"], r["id"]))


def _streams(det: Detector, recs: list[dict]) -> tuple[dict, dict]:
    orgs: dict[str, Tracked] = {}
    keys: dict[tuple[str, str], Tracked] = {}
    det.consume(((r["org"], extract(r, det.bench)) for r in recs), orgs, keys)
    return orgs, keys


def test_shared_sub_streams_change_no_result():
    recs = _accounts(random.Random(9))
    fast, plain = Detector(rings=False), Detector(rings=False)
    plain.share_streams = False
    f_orgs, f_keys = _streams(fast, recs)
    p_orgs, p_keys = _streams(plain, recs)
    assert list(f_keys) == list(p_keys)
    assert any(k.state is f_orgs[o].state for (o, _), k in f_keys.items())  # some stream still shares its state
    for (o, sid), k in p_keys.items():
        g = f_keys[(o, sid)]
        assert (g.best, g.best_vector, g.first_flag) == (k.best, k.best_vector, k.first_flag)
        assert g.state is f_orgs[o].state or g.next_cp == k.next_cp  # a sharing stream's position is set on unsharing
        # equal up to float rounding: a shared state folds its topic sums at other points than a stream's own
        assert g.state.n == k.state.n and g.state.vector() == pytest.approx(k.state.vector(), rel=1e-12), (o, sid)
    a = fast.finish(f_orgs, f_keys, len(recs))
    b = plain.finish(p_orgs, p_keys, len(recs))
    assert [x.to_json() for x in a.accounts] == [x.to_json() for x in b.accounts]


def test_shared_window_sub_streams_change_no_result():
    recs = _accounts(random.Random(10))
    fast, plain = OnlineDetector(window=90), OnlineDetector(window=90)
    plain.share_streams = False
    for r in recs:
        fast.observe(r)
        plain.observe(r)
    assert fast.errors == plain.errors == 0
    for org in {r["org"] for r in recs}:
        assert fast.signals(org) == plain.signals(org)
