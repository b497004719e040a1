"""Text in scripts written without spaces between words (Chinese, Japanese, Thai), and in alphabets other than the
Latin one: the units the detector's text features use there.

The word-based features (content words, word pairs, skeleton tokens, English instruction markers) see nothing in
such text: an account harvesting in Chinese had no topic, no scaffold, no markers, and - worst - answers without
word pairs, which read as answers grounded in their prompts. Here each such character is a token for skeletons,
character bigrams are its topic words, character 4-grams its "word pairs" for novelty, and the instruction markers
have Chinese forms. Words of other alphabets (Cyrillic, Greek, Arabic, Hangul ...) are topic words and follow-up
units as English words are. Text without these scripts is untouched by all of it.
"""

from __future__ import annotations

import re

# Han (with extension A and compatibility ideographs), Hiragana, Katakana, Thai
UNSEGMENTED = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\u0e00-\u0e7f"
_CHAR = re.compile(f"[{UNSEGMENTED}]")
_RUN = re.compile(f"[{UNSEGMENTED}]+")

NGRAM = 4  # characters per novelty unit: about two Chinese words, as an English word pair


# Words of the other alphabets written with spaces (Cyrillic, Greek, Arabic, Hebrew, Hangul, Devanagari ...): letters
# that are neither Latin (the word features' a-z; accented Latin, phonetic and Vietnamese letters are left to them as
# they were) nor of the scripts above
_OTHER_WORD = re.compile(f"[^\\W\\d_\\x00-\\u02ff\\u1e00-\\u1eff{UNSEGMENTED}]{{2,}}")


def has_unsegmented(text: str) -> bool:
    """Whether ``text`` has a character of these scripts (ASCII text has none: checked first, at no cost)."""
    return not text.isascii() and _CHAR.search(text) is not None


def space_out(text: str) -> str:
    """``text`` with a space on each side of every such character (collapse white space afterwards)."""
    return _CHAR.sub(r" \g<0> ", text)


def extra_units(text: str, limit: int) -> list[str]:
    """What the word features miss in a non-ASCII text, as words: character bigrams of the scripts without spaces
    (``bigrams``) and the words of other alphabets, at most ``limit`` of each, in order."""
    if text.isascii():
        return []
    out = bigrams(text, limit) if _CHAR.search(text) else []
    seen: dict[str, None] = {}
    for m in _OTHER_WORD.finditer(text):
        seen[m.group()] = None
        if len(seen) >= limit:
            break
    return out + list(seen)


def bigrams(text: str, limit: int) -> list[str]:
    """The first ``limit`` distinct character bigrams inside runs of these scripts, in order."""
    out: dict[str, None] = {}
    for run in _RUN.findall(text):
        for i in range(len(run) - 1):
            out[run[i:i + 2]] = None
            if len(out) >= limit:
                return list(out)
    return list(out)


def ngrams(text: str, limit: int, n: int = NGRAM) -> list[str]:
    """Up to ``limit`` distinct, non-overlapping ``n``-character pieces of the runs of these scripts, in order."""
    out: dict[str, None] = {}
    for run in _RUN.findall(text):
        for i in range(0, len(run) - n + 1, n):
            out[run[i:i + n]] = None
            if len(out) >= limit:
                return list(out)
    return list(out)


# Chinese forms of the instruction-style markers (text.MARKERS), for lower-cased text that has these scripts.
_NUM = r"(?:\d+|[一二两三四五六七八九十百几多]+)"
MARKERS_ZH: dict[str, re.Pattern[str]] = {
    "generate_n": re.compile(
        r"(?:生成|写出?|列出|给出|提供|创建|编写|想出|设计)[^。！？\n]{0,12}?" + _NUM
        + r"\s*(?:个|条|道|组|句|段|篇|种)[^。！？\n]{0,12}?(?:例子|示例|样例|问题|指令|任务|样本|句子|对话|问答|题目|想法"
        r"|回答|提示)"
    ),
    "step_by_step": re.compile(r"一步一步|一步步|逐步|分步骤?|(?:解释|说明|展示)(?:你的|一下)?(?:推理|思路|解题过程|过程)"),
    "output_format": re.compile(
        r"(?:以|用|按照?|输出为?)\s*(?:json|yaml|csv|markdown|表格|列表|项目符号|编号列表)|(?:json|表格)\s*格式|格式[:：]"
    ),
    "persona": re.compile(r"你是一(?:个|名|位)|扮演|假设你是|假装(?:你是)?|想象你是|作为一(?:个|名|位)(?:专家|资深|专业)"),
    "length_demand": re.compile(
        r"(?:至少|不少于|不低于|大约|约|左右)\s*\d+\s*(?:个)?(?:字|词|句|段|行)|详细|全面|深入|详尽"
    ),
    "imperative": re.compile(
        r"^\s*(?:请)?(?:写|生成|创建|解释|描述|列出|给出|提供|总结|概括|改写|重写|翻译|分类|比较|设计|分析|评估|计算|回答"
        r"|识别|编写|构建|提出|推荐|判断|找出|说明|讲)"
    ),
    "answer_format": re.compile(
        r"只(?:需)?(?:回答|输出|给出|写出?)(?:字母|数字|选项|答案)|最终答案|答案是|答案[:：]|选项[:：]|^问题[:：]", re.MULTILINE
    ),
    "dataset_format": re.compile(
        r"指令[:：]|输入[:：]|输出[:：]|回答[:：]|训练数据|训练集|数据集|问答对|指令数据|微调数据"
    ),
    "rewrite_variant": re.compile(r"改写|重写|换(?:一种|个)(?:说法|方式|表达)|用更简单的|释义|同义句|简化"),
}
