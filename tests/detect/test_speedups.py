"""The compiled loops (detect/_speedups.pyx) compute what the pure-Python code they stand in for computes."""

from __future__ import annotations

import random
import zlib

import pytest

from distillguard.detect import bench as bench_mod
from distillguard.detect import features as F
from distillguard.detect import speedups
from distillguard.detect.bench import BenchmarkIndex
from distillguard.detect.scripts import extra_units
from distillguard.detect.text import reference_words

from . import traffic as T

native = speedups.native
needs_native = pytest.mark.skipif(native is None, reason="checked by test_the_extension_is_built")

PIECES = ["it's", "'tis", "''", "'", "a", "b'", "x'y'z", "the", "don't", "rock'n'roll", "é", "naïve", "\u212a", "İ",
          "ab", "a1b", "z", "--", "o'", "'a", "word", "this", "about", "should", "i'm", " ", "\n", "\t", "\x1c", "\x0b",
          "9", "3.5", "(word)", "word,", "end.", "#tag", "`code`", "_x_", "x_y", "Question", "ANSWER", "___", "***",
          "糖水", "学习", "ひらがな", "привет", "ɪnˌtɜr", "한국어"]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) + rng.choice(["", " ", " ", "'", "-", ".", "\n"])
                    for _ in range(rng.randint(0, 80))) for _ in range(n)]


def _corpus() -> list[str]:
    return [m["content"] for msgs in sum(T.pools().values(), []) for m in msgs if m["content"]]


def test_the_extension_is_built():
    # pyproject.toml builds it wherever a C compiler is found, as on every machine this project runs on
    assert native is not None


@needs_native
def test_crc32_is_zlibs():
    rng = random.Random(1)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 50)))
        start = rng.randrange(2**32)
        assert native.crc32(data) == zlib.crc32(data)
        assert native.crc32(data, start) == zlib.crc32(data, start)


@needs_native
def test_topic_buckets_equal_the_word_definition():
    for t in _texts(4000, 2) + _corpus():
        lower = t[:600].lower()
        units = reference_words(lower, F.TOPIC_WORDS) + extra_units(lower[: F.TOPIC_WORDS * 12], F.TOPIC_WORDS)
        want = {zlib.crc32(w.encode()) & (F.TOPIC_DIM - 1) for w in units}
        got = F.topic_buckets(lower)
        assert len(got) == len(set(got)) and set(got) == want, t


@needs_native
def test_novelty_pairs_equal_the_python_loop():
    texts = _texts(4000, 3) + _corpus()
    for t in texts:
        head = t[: F.NOVELTY_ANSWER_CHARS]
        if not head.isascii():
            continue
        want = list(F._novelty_pairs(head))
        got = native.novelty_pairs(head.lower().encode("ascii"), F._PUNCT_BYTES, F.NOVELTY_PAIRS)
        assert got == want, t
    prompt = texts[10]
    for answer in texts[:500]:
        fast = F.answer_novelty(answer, prompt)
        speedups_off, F.native = F.native, None
        try:
            assert F.answer_novelty(answer, prompt) == fast
        finally:
            F.native = speedups_off


@needs_native
def test_shingle_hits_equal_the_python_probes():
    prompts = [p for p in _corpus() if p.isascii()]
    rng = random.Random(4)
    index = BenchmarkIndex(prompts[::3])
    wrapped = [f"Question: {p}\nAnswer:" for p in prompts[::5]] + _texts(2000, 5)
    for p in prompts + wrapped + [" ".join(rng.choice(["x", "y", "Z9", "a_b"]) for _ in range(n)) for n in range(20)]:
        fast = index.overlap(p)
        saved, bench_mod.native = bench_mod.native, None
        try:
            assert index.overlap(p) == fast, p
        finally:
            bench_mod.native = saved
    assert any(index.overlap(p) > 0 for p in prompts[::3])  # the index was hit, so the comparison means something


@needs_native
def test_a_stale_extension_is_not_used(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    built = Path(native.__file__)
    source = built.with_name("_speedups.pyx")
    old = source.stat()
    try:
        os.utime(source, (old.st_atime, built.stat().st_mtime + 10))
        with pytest.warns(RuntimeWarning, match="older than"):
            assert speedups._load() is None
    finally:
        os.utime(source, (old.st_atime, old.st_mtime))
    assert speedups._load() is not None
    monkeypatch.setenv("DISTILLGUARD_NO_SPEEDUPS", "1")
    assert speedups._load() is None


def _pure_and_native(fn, monkeypatch, *args):
    from distillguard.detect import text

    fast = fn(*args)
    with monkeypatch.context() as m:
        for mod in (text, F, bench_mod):
            m.setattr(mod, "native", None)
        slow = fn(*args)
    return fast, slow


@needs_native
def test_content_words_masks_and_skeleton_keys_equal_the_python_code(monkeypatch):
    from distillguard.detect.text import mask, word_bytes

    for t in _texts(3000, 6) + _corpus():
        lower = t.lower()
        for limit in (3, 40, 300):
            fast, slow = _pure_and_native(word_bytes, monkeypatch, lower, limit)
            assert fast == slow == [w.encode() for w in reference_words(lower, limit)], (t, limit)
        fast, slow = _pure_and_native(mask, monkeypatch, t)
        assert fast == slow, t
        for skel in (slow, t, " ".join(t.split()[:30])):
            fast, slow_keys = _pure_and_native(F._skeleton_keys, monkeypatch, skel)
            assert fast == slow_keys, skel


@needs_native
def test_extraction_is_the_same_with_and_without_the_extension(monkeypatch):
    import dataclasses
    import io

    import orjson

    from distillguard.sim import generate, get

    out, labels = io.BytesIO(), io.BytesIO()
    generate(get("mixed-small"), 3, out, labels, split="dev")
    recs = [orjson.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    index = bench_mod.default_index()

    def features(rec):
        d = dataclasses.asdict(F.extract(rec, index))
        d["topic"] = sorted(d["topic"])  # a set of buckets: its order is not part of the result
        return d

    assert len(recs) > 1000
    for rec in recs:
        fast, slow = _pure_and_native(features, monkeypatch, rec)
        assert fast == slow, rec.get("id")
