"""Text in scripts without spaces between words (Chinese, Japanese, Thai) reaches the text features.

The shipped corpus is English, so the account-level checks rewrite English traffic into a script without spaces:
each English word becomes a fixed pair of Han characters and the spaces between them go. What was shared between a
prompt and its answer stays shared, what was new stays new: the same behaviour, with no word the English features
can read. A harvester must stay flagged and a chatty user benign.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from distillguard.detect.engine import Detector
from distillguard.detect.features import answer_novelty, extract, topic_buckets
from distillguard.detect.text import MARKER_BIT, builds_on_answer, marker_bits, mask, reference_marker_bits

from . import traffic as T

_WORDS = re.compile(r"[A-Za-z]+")
_GAP = re.compile(r"(?<=[\u4e00-\u9fff]) +(?=[\u4e00-\u9fff])")


def _han(word: str) -> str:
    h = zlib.crc32(word.lower().encode())
    return chr(0x4E00 + h % 20000) + chr(0x4E00 + (h >> 15) % 20000)


def hanzify(text: str) -> str:
    return _GAP.sub("", _WORDS.sub(lambda m: _han(m.group()), text))


def cyrillize(text: str) -> str:
    """Each English word as a fixed Cyrillic word (spaces kept): an alphabet the a-z word features do not read."""
    def word(m: re.Match[str]) -> str:
        h = zlib.crc32(m.group().lower().encode())
        return "".join(chr(0x430 + (h >> (3 * i)) % 32) for i in range(3 + h % 6))
    return _WORDS.sub(word, text)


def _convert(recs: list[dict[str, Any]], conv: Callable[[str], str]) -> list[dict[str, Any]]:
    out = []
    for r in recs:
        r = {**r, "request": dict(r["request"]), "response": dict(r["response"])}
        r["request"]["messages"] = [{**m, "content": conv(m["content"])} for m in r["request"]["messages"]]
        r["response"]["text"] = conv(r["response"]["text"])
        out.append(r)
    return out


@pytest.fixture(scope="module")
def english() -> list[dict[str, Any]]:
    rng = random.Random(5)
    recs: list[dict[str, Any]] = []
    for i in range(2):
        recs += T.harvester(f"harvest{i}", 400, rng) + T.chatter(f"chat{i}", 300, rng)
    return sorted(recs, key=lambda r: r["ts"])


# Known regression (ADR 0007, "Collecting as the training target"): in these ciphers no word can be read, so no
# instruction marker either, and the model trained on both corpora no longer flags a harvester without dataset-style
# wording (0.65 / 0.79 against 0.958). Real Chinese harvesters, whose markers are read, stay flagged
# (``detect.crosslingual``: 15/15). Strict: the day the structure alone flags them again, these fail and the mark goes.
_NO_MARKERS = pytest.mark.xfail(strict=True, reason="a harvester with no readable marker is missed (ADR 0007)")


@pytest.fixture(scope="module")
def verdicts(english: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per script, the detector's verdict on each account of the English traffic rewritten into it."""
    return {name: {a.org: a for a in Detector(rings=False).run(_convert(english, conv)).accounts}
            for name, conv in (("english", lambda s: s), ("han", hanzify), ("cyrillic", cyrillize))}


@pytest.mark.parametrize("script", ["english", "han", "cyrillic"])
def test_a_chatty_user_stays_benign_in_other_scripts(verdicts, script):
    for i in range(2):
        acc = verdicts[script][f"chat{i}"]
        assert not acc.flagged and acc.label == "benign"
        assert acc.score < 0.5  # not near the line either


@pytest.mark.parametrize("script", ["english", pytest.param("han", marks=_NO_MARKERS),
                                    pytest.param("cyrillic", marks=_NO_MARKERS)])
def test_a_harvester_stays_flagged_in_other_scripts(verdicts, script):
    for i in range(2):
        acc = verdicts[script][f"harvest{i}"]
        assert acc.flagged and acc.label == "distillation"


def test_novelty_in_chinese_tells_new_text_from_text_taken_from_the_prompt():
    doc = "细胞理论认为所有生命体都是由细胞构成的，细胞是生物结构和功能的基本单位，新的细胞只能由已有的细胞分裂产生。"
    assert answer_novelty("日心说认为太阳位于宇宙的中心，地球和其他行星都围绕太阳运行，这一理论由哥白尼提出。", "请解释日心说。") > 0.8
    assert answer_novelty("细胞是生物结构和功能的基本单位，新的细胞只能由已有的细胞分裂产生。", f"总结：{doc}") < 0.3


def test_a_chinese_template_keeps_its_scaffold_and_topic_words():
    a = mask("请为以下主题写一篇详细的科普文章，要求语言通俗易懂：量子计算")
    b = mask("请为以下主题写一篇详细的科普文章，要求语言通俗易懂：光合作用")
    assert a.split()[:8] == b.split()[:8] and len(a.split()) > 20
    ra = extract({"request": {"messages": [{"role": "user", "content": "请为以下主题写一篇详细的科普文章：量子计算"}]}})
    rb = extract({"request": {"messages": [{"role": "user", "content": "请为以下主题写一篇详细的科普文章：光合作用"}]}})
    assert ra.head and ra.head == rb.head
    assert topic_buckets("量子计算") and set(topic_buckets("量子计算")) != set(topic_buckets("光合作用"))
    assert topic_buckets("plain english words") == topic_buckets("plain english words")  # unchanged for English


def test_chinese_instruction_markers():
    cases = {
        "generate_n": "请生成10个关于环保的问题", "step_by_step": "请一步一步地解释你的推理",
        "output_format": "请以JSON格式输出结果", "persona": "你是一个经验丰富的律师",
        "length_demand": "写一篇不少于800字的文章", "imperative": "解释一下光合作用",
        "answer_format": "只回答选项字母", "dataset_format": "指令：翻译下面的句子\n输入：你好\n输出：",
        "rewrite_variant": "请改写这段话",
    }
    for marker, text in cases.items():
        bits = marker_bits(text.lower())
        assert bits & MARKER_BIT[marker], (marker, text)
        assert bits == reference_marker_bits(text.lower())
    assert marker_bits("今天天气很好，我们去公园散步吧") == 0


def test_a_chinese_follow_up_builds_on_the_answer():
    prev = "光合作用是植物利用阳光把二氧化碳和水转化为葡萄糖和氧气的过程，主要发生在叶绿体中。"
    more = "叶绿体中的叶绿素吸收阳光，光合作用分为光反应和暗反应两个阶段。"
    assert builds_on_answer("继续", prev, more)
    assert not builds_on_answer("继续", prev, "日心说认为太阳位于宇宙的中心，地球围绕太阳运行。")


def test_the_cross_language_check_runs_on_a_corpus_directory(tmp_path):
    import gzip
    import json

    from distillguard.detect import crosslingual

    pool = [m for m in T.pools()["gpteacher"] + T.pools()["seed"] if len(m) >= 2 and m[0]["role"] == "user"]
    pairs = random.Random(1).sample(pool, 400)
    (tmp_path / "distill").mkdir()
    (tmp_path / "benign").mkdir()
    for lang, conv in (("en", lambda s: s), ("zh", hanzify)):
        with open(tmp_path / "distill" / f"alpaca_gpt4_{lang}.jsonl", "w") as f:
            for m in pairs:
                msgs = [{"role": x["role"], "content": conv(x["content"])} for x in m[:2]]
                f.write(json.dumps({"lang": lang, "messages": msgs}) + "\n")
    with gzip.open(tmp_path / "benign" / "sharegpt.jsonl.gz", "wt") as f:
        for lang, conv in (("en", lambda s: s), ("zh", hanzify)):
            for m in T.pools()["glaive"][:40]:
                msgs = [{"role": x["role"], "content": conv(x["content"])} for x in m if x["role"] in ("user", "assistant")]
                f.write(json.dumps({"lang": lang, "messages": msgs}) + "\n")
    rows = {(r["behaviour"], r["lang"]): r for r in crosslingual.run(tmp_path, accounts=2, requests=150)}
    assert len(rows) == 8, rows
    for lang in ("en", "zh"):  # (verdicts are checked above; this is the tool on a small corpus)
        assert rows[("harvest", lang)]["min"] > max(rows[(b, lang)]["max"] for b in ("chat", "rag")), rows
        assert rows[("rag", lang)]["flagged"] == 0 and rows[("chat", lang)]["flagged"] == 0, rows


def test_extra_units_cover_what_the_a_z_words_miss():
    from distillguard.detect.scripts import extra_units

    text = "привет мир, как дела? café naïve ɪnˌtɜr việt 糖水好吃 한국어 문장 ελληνικά"
    assert extra_units(text, 10) == ["糖水", "水好", "好吃", "привет", "мир", "как", "дела", "한국어", "문장", "ελληνικά"]
    assert extra_units("plain ascii text", 10) == [] and extra_units("café naïve", 10) == []
    assert len(extra_units("один два три четыре", 2)) == 2
