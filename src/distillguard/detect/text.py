"""Prompt text helpers: which text a request carries, masked skeletons, instruction-style markers.

Everything here runs per request on the online path, so it works on a bounded prefix of the prompt and uses a few
precompiled regexes only.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from ..upstreams.corpus import content_text
from .multiscan import MultiScanner
from .scripts import MARKERS_ZH, extra_units, has_unsegmented, space_out
from .speedups import native

HEAD_CHARS = 600  # how much of a prompt the per-request features look at

_WORD = re.compile(r"[a-z][a-z']+")
_QUOTED = re.compile(r"\"[^\"\n]{1,200}\"|“[^”\n]{1,200}”|'[^'\n]{3,200}'|`[^`\n]{1,200}`")
_CODE = re.compile(r"```.*?(```|$)", re.DOTALL)
_URL = re.compile(r"https?://\S+|\S+@\S+\.\w+")
_NUM = re.compile(r"\d+(?:[.,:/]\d+)*")
# _NUM for ASCII text, where \d is [0-9]; ``[0-9][0-9]*`` rather than ``[0-9]+`` lets ``re`` look for the first
# character with its fast character-set scan (measured: half the time of _NUM on the detector's prompts)
_NUM_ASCII = re.compile(r"[0-9][0-9]*(?:[.,:/][0-9]+)*")
# A capitalised word run after a lower-case word or a comma: ``(?<=[a-z,;:] )[A-Z]...``, written with the capital
# first (and the same lookbehind, three characters wide, behind it) so that ``re`` only tries it at capitals.
_ENTITY = re.compile(r"[A-Z](?<=[a-z,;:] [A-Z])[\w'-]*(?: [A-Z][\w'-]*)*")
_SPACE = re.compile(r"\s+")

# Instruction-style markers (lower-cased text). Each is one bit of ``marker_bits``.
MARKERS: dict[str, re.Pattern[str]] = {
    "generate_n": re.compile(
        r"\b(generate|create|write|give|list|produce|come up with|provide)\b[^.\n]{0,40}?\b(\d+|two|three|four|five|"
        r"ten|twenty|several|multiple|a set of|a list of)\b[^.\n]{0,30}?\b(examples?|instructions?|questions?|tasks?|"
        r"samples?|pairs?|prompts?|sentences?|items?|ideas?|variations?|responses?)"
    ),
    "step_by_step": re.compile(r"step[- ]by[- ]step|show (your|the) (work|reasoning)|explain (your|the) reasoning"),
    "output_format": re.compile(
        r"\b(json|yaml|csv|markdown|bullet(ed)? (points|list)|numbered list|in a table|as a table|table format)\b"
        r"|format:\s|### (instruction|input|response)"
    ),
    "persona": re.compile(
        r"\b(you are an?|act as an?|pretend (you are|to be)|role[- ]?play|imagine you are|as an? (expert|experienced"
        r"|professional))\b"
    ),
    "length_demand": re.compile(
        r"\b(at least|no (less|fewer) than|minimum of|about|around|exactly|in)\s\d+\s(words|sentences|paragraphs"
        r"|lines|tokens)\b|\b(detailed|comprehensive|in[- ]depth|thorough|elaborate|long[- ]form)\b"
    ),
    "imperative": re.compile(
        r"^\s*(please\s)?(write|generate|create|explain|describe|list|give|provide|summari[sz]e|rewrite|paraphrase"
        r"|translate|classify|compose|construct|design|develop|identify|compare|outline|suggest|name|find|"
        r"convert|edit|make|tell|analy[sz]e|evaluate|brainstorm|categori[sz]e|predict|calculate|come up)\b"
    ),
    "answer_format": re.compile(
        r"answer with (only|just)|only (the|a) (letter|number|option)|final answer|the answer is|\(a\)|\ba\)\s"
        r"|answer:\s*$|^question:|choices?:|#### ?\d|put your answer|respond with (only|just)|^\s*def \w+\("
        r"|\ndef \w+\(", re.MULTILINE
    ),
    "dataset_format": re.compile(
        r"### (instruction|input|response)|\b(instruction|output|response|completion)\s*:|[\"'](instruction|input|output"
        r"|response|prompt|completion)[\"']\s*:|\bjsonl\b|\b(instruction|synthetic|training|fine-?tuning) dataset\b|\btraining (data|examples?|set|pairs)\b"
        r"|\b(question|instruction|prompt)[- /](answer|response|output|completion) pairs?\b|an input and an output"
    ),
    "rewrite_variant": re.compile(
        r"\b(rewrite|rephrase|paraphrase|simplify|in other words|another way|different (way|version)|"
        r"for a (child|beginner|5[- ]year[- ]old)|eli5)\b"
    ),
}
# Cheap substring pre-checks: a marker's regex runs only if one of these occurs in the text.
_PREFILTER: dict[str, tuple[str, ...]] = {
    "generate_n": ("example", "instruction", "question", "task", "sample", "pair", "prompt", "sentence", "item",
                   "idea", "variation", "response"),
    "step_by_step": ("step", "reasoning", "your work", "the work"),
    "output_format": ("json", "yaml", "csv", "markdown", "table", "bullet", "numbered", "format:", "###"),
    "persona": ("you are", "act as", "pretend", "role", "imagine", "as a"),
    "length_demand": ("words", "sentences", "paragraphs", "lines", "tokens", "detail", "comprehensive", "depth",
                      "thorough", "elaborate", "long"),
    "imperative": ("",),
    "answer_format": ("answer", "a)", "question", "choice", "####", "respond with", "def "),
    "dataset_format": ("instruction", "output", "response", "completion", "jsonl", "dataset", "training", "pair",
                       "input"),
    "rewrite_variant": ("rewrite", "rephrase", "paraphrase", "simplif", "other words", "another way", "different",
                        "for a ", "eli5"),
}
_CHECKS = tuple((MARKERS[name], _PREFILTER[name], 1 << i) for i, name in enumerate(MARKERS))


def _lb(word: str) -> str:
    """``\\b`` + ``word`` (a plain literal starting with a word character), written as the literal followed by a
    fixed-width lookbehind: ``\\b`` before a word character is ``(?<!\\w)``, and checking it just after the literal
    lets ``re`` find the pattern by its first characters instead of trying it at every position of the text."""
    w = re.escape(word)
    return f"{w}(?<!\\w{w})"


def _alts(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


def _toks(*words: str) -> frozenset[bytes]:
    return frozenset(w.encode() for w in words)


# Fast forms of the markers, clause by clause. A clause (tokens, needles, regex, gated) fires when the text has one
# of ``tokens`` as a whole letter run (``_letter_runs``; None: no such test), contains one of ``needles`` (empty: no
# such test), ``regex`` matches, and, if ``gated``, one of the marker's _PREFILTER needles occurs. For each marker:
# - every top-level alternative of its MARKERS regex is covered by a clause whose regex matches wherever that
#   alternative does, and no clause regex matches where the marker's regex does not (a clause regex is some of the
#   alternatives, with a leading ``\b`` moved behind the first literal, or the marker's regex itself);
# - a clause's tokens / needles occur in every text its alternatives match: a literal of letters with a word
#   boundary, a space or punctuation on both sides in the pattern is a whole letter run wherever it matches;
# - ``gated`` is set unless a clause's match (or tokens) already contains one of the prefilter needles.
# So ``marker_bits`` equals ``reference_marker_bits`` (tests/detect/test_text.py checks it on generated and real
# prompts); it only skips most regex searches and substring scans.
_Clause = tuple[frozenset[bytes] | None, tuple[str, ...], re.Pattern[str], bool]
_NOUNS = (r"(?:examples?|instructions?|questions?|tasks?|samples?|pairs?|prompts?|sentences?|items?|ideas?"
          r"|variations?|responses?)")
_FAST: dict[str, tuple[_Clause, ...]] = {
    "generate_n": (
        (_toks("generate", "create", "write", "give", "list", "produce", "come", "provide"), _PREFILTER["generate_n"],
         re.compile(_alts(*(_lb(w) for w in ("generate", "create", "write", "give", "list", "produce", "come up with",
                                               "provide")))
                    + r"\b[^.\n]{0,40}?\b(?:\d+|two|three|four|five|ten|twenty|several|multiple|a set of|a list of)\b"
                    + r"[^.\n]{0,30}?\b" + _NOUNS), False),
    ),
    "step_by_step": (
        (_toks("by"), (), re.compile(r"step[- ]by[- ]step"), False),
        (None, ("show your ", "show the "), re.compile(r"show (?:your|the) (?:work|reasoning)"), False),
        (None, ("reasoning",), re.compile(r"explain (?:your|the) reasoning"), False),
    ),
    "output_format": (
        (_toks("json", "yaml", "csv", "markdown", "bullet", "bulleted", "numbered", "table"), (), re.compile(
            _alts(_lb("json"), _lb("yaml"), _lb("csv"), _lb("markdown"), _lb("bullet") + "(?:ed)? (?:points|list)",
                  _lb("numbered list"), _lb("in a table"), _lb("as a table"), _lb("table format")) + r"\b"), False),
        (None, (":",), re.compile(r"format:\s"), False),
        (None, ("#",), re.compile(r"### (?:instruction|input|response)"), False),
    ),
    "persona": (
        (_toks("are"), (), re.compile(_lb("you are a") + r"n?\b"), False),
        (_toks("act"), (), re.compile(_lb("act as a") + r"n?\b"), False),
        (_toks("pretend", "role", "roleplay", "imagine", "expert", "experienced", "professional"), (), re.compile(
            _alts(_lb("pretend") + " (?:you are|to be)", _lb("role") + "[- ]?play", _lb("imagine you are"),
                  _lb("as a") + "n? (?:expert|experienced|professional)") + r"\b"), False),
    ),
    "length_demand": (
        (_toks("words", "sentences", "paragraphs", "lines", "tokens"), (), re.compile(
            _alts(_lb("at least"), _lb("no") + " (?:less|fewer) than", _lb("minimum of"), _lb("about"), _lb("around"),
                  _lb("exactly"), _lb("in")) + r"\s\d+\s(?:words|sentences|paragraphs|lines|tokens)\b"), False),
        (_toks("detailed", "comprehensive", "depth", "thorough", "elaborate", "form"), (), re.compile(
            _alts(_lb("detailed"), _lb("comprehensive"), _lb("in") + "[- ]depth", _lb("thorough"), _lb("elaborate"),
                  _lb("long") + "[- ]form") + r"\b"), False),
    ),
    "imperative": ((None, (), MARKERS["imperative"], False),),
    "answer_format": (
        # answer with (only|just) | final answer | the answer is | answer:\s*$ | put your answer
        (None, ("answer",), re.compile(r"answer(?: with (?:only|just)|(?<=final answer)|(?<=the answer) is|:\s*$"
                              r"|(?<=put your answer))", re.MULTILINE), False),
        (None, (")",), re.compile(r"a\)(?:(?<=\(a\))|(?<!\wa\))\s)"), False),  # \(a\) | \ba\)\s
        (None, (":",), re.compile(r"question:(?<![^\n]question:)"), False),  # ^question: (multi-line ^)
        (None, (":",), re.compile(r"choices?:"), False),
        (None, ("#",), re.compile(r"#### ?\d"), False),
        (None, ("respond with",), re.compile(r"respond with (?:only|just)"), False),
        (_toks("def"), (), re.compile(r"^\s*def \w+\(|\ndef \w+\(", re.MULTILINE), False),
        (None, ("only the ", "only a "), re.compile(r"only (?:the|a) (?:letter|number|option)"), True),
    ),
    "dataset_format": (
        (None, ("#",), re.compile(r"### (?:instruction|input|response)"), False),
        *((_toks(w), (":",), re.compile(_lb(w) + r"\s*:"), False)
          for w in ("instruction", "output", "response", "completion")),
        (_toks("instruction", "input", "output", "response", "prompt", "completion"), (":",),
         re.compile(r"[\"'](?:instruction|input|output|response|prompt|completion)[\"']\s*:"), True),
        # \bjsonl\b | (...) dataset\b | \btraining (...)\b | (...)[- /](...) pairs?\b: rare, so the whole regex
        (_toks("jsonl", "dataset", "training", "pair", "pairs"), (), MARKERS["dataset_format"], False),
        (_toks("input"), (), re.compile(r"an input and an output"), False),
    ),
    "rewrite_variant": (
        (_toks("rewrite", "rephrase", "paraphrase", "simplify", "eli"), (), re.compile(
            _alts(_lb("rewrite"), _lb("rephrase"), _lb("paraphrase"), _lb("simplify"), _lb("eli5")) + r"\b"), False),
        (_toks("other"), (), re.compile(_lb("in other words") + r"\b"), False),
        (_toks("another"), (), re.compile(_lb("another way") + r"\b"), False),
        (_toks("different"), (), re.compile(_lb("different") + r" (?:way|version)\b"), False),
        (_toks("child", "beginner", "year"), (), re.compile(_lb("for a") + r" (?:child|beginner|5[- ]year[- ]old)\b"),
         False),
    ),
}
_FAST_CHECKS = tuple((_FAST[name], _PREFILTER[name], 1 << i) for i, name in enumerate(MARKERS))
_LETTERS = bytes(b if 97 <= b <= 122 else 32 for b in range(256))  # a-z kept, every other byte a separator


def _letter_runs(text: str) -> set[bytes]:
    """The maximal runs of a-z in ``text`` (UTF-8 bytes of other characters are never a-z)."""
    return set(text.encode("utf-8", "surrogatepass").translate(_LETTERS).split())


MARKER_NAMES: tuple[str, ...] = tuple(MARKERS)
MARKER_BIT: dict[str, int] = {name: 1 << i for i, name in enumerate(MARKER_NAMES)}

_FOLLOW_UP = re.compile(
    r"\b(you said|your (answer|response|code|example|suggestion)|the above|above|that|this|it|those|these|"
    r"instead|also|again|more|why|what about|how about|can you|could you|thanks|thank you|ok|okay|but|continue|"
    r"go on|keep going)\b"
)

STOPWORDS = frozenset(
    ["the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "was", "were", "be", "been", "it", "this", "that", "these", "those", "i", "you", "he", "she", "we", "they", "me", "my", "your", "our", "their", "what", "which", "who", "how", "why", "when", "where", "can", "could", "would", "should", "will", "do", "does", "did", "not", "no", "yes", "please", "as", "at", "by", "from", "about", "into", "than", "then", "so", "if", "but", "also", "any", "all", "some", "more", "most", "very", "just", "like", "have", "has", "had", "its", "it's", "i'm", "there", "here", "them", "his", "her", "us", "am", "get", "make", "use", "using", "write", "give"]
)


class PromptView:
    """The parts of one request body that the detector looks at."""

    __slots__ = ("has_history", "input_chars", "own", "own_chars", "prev_answer", "prompt", "system", "turns")

    def __init__(self, request: dict[str, Any] | None) -> None:
        self.prompt = ""
        self.system = ""
        self.prev_answer = ""
        self.turns = 0
        self.has_history = False
        self.own: list[str] = []  # the texts the client wrote or supplied: every message but the assistant's
        self.input_chars = 0  # characters of all the messages (the input the request is charged for)
        self.own_chars = 0  # ... of ``own``
        if not isinstance(request, dict):
            return
        msgs = request.get("messages")
        if not isinstance(msgs, list):
            p = request.get("prompt")
            if isinstance(p, list):
                p = p[0] if p else ""
            p = p if isinstance(p, str) else ""
            # a chat flattened into a completions prompt is read as the chat it is; any other prompt whole
            msgs = _transcript(p) if p else None
            if msgs is None:
                self.prompt = p
                self.turns = 1 if p else 0
                self.own = [p] if p else []
                self.input_chars = self.own_chars = len(p)
                return
        last_user = ""
        own = self.own
        chars = own_chars = 0
        for m in msgs:
            if not isinstance(m, dict):
                continue
            role = m.get("role")
            text = content_text(m.get("content"))
            chars += len(text)
            if role == "assistant":
                self.prev_answer = text
                self.has_history = True
                continue
            own.append(text)
            own_chars += len(text)
            if role == "user":
                self.turns += 1
                last_user = text
            elif role in ("system", "developer") and not self.system:
                self.system = text
        self.prompt = last_user
        self.input_chars = chars
        self.own_chars = own_chars


_TURN = re.compile(r"^[ \t]*(user|human|assistant|ai|system)[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)
_ROLE = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant", "system": "system"}


def _transcript(prompt: str) -> list[dict[str, str]] | None:
    """The messages of a legacy completions prompt holding a conversation ("User: ... Assistant: ... User: ..." or
    Human/AI, each role at a line start, ending with the user's turn or the cue for the answer), without empty
    answers (the cue among them); None for any other prompt. Every turn of such a chat is read alike, the first one
    included, so that the chat's requests keep one client shape."""
    marks = list(_TURN.finditer(prompt[:20000]))
    if len(marks) < 2:
        return None
    messages = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(prompt)
        role, text = _ROLE[m.group(1).lower()], prompt[m.end():end].strip()
        if role != "assistant" or text:
            messages.append({"role": role, "content": text})
    return messages if messages and messages[-1]["role"] == "user" else None


def mask(text: str) -> str:
    """A prompt's skeleton: code, quoted spans, URLs, numbers and mid-sentence names become placeholders."""
    t = text[:HEAD_CHARS]
    if "```" in t:
        t = _CODE.sub(" <code> ", t)
    if "://" in t or "@" in t:
        t = _URL.sub("<url>", t)
    if '"' in t or "'" in t or "`" in t or "“" in t:
        t = _QUOTED.sub("<q>", t)
    if native is not None and t.isascii():
        return native.mask_ascii(t.encode()).decode()
    t = _ENTITY.sub("<e>", t)
    if not t.isascii():
        t = _NUM.sub("<n>", t)
    elif _has_digit(t):  # without a digit _NUM has nothing to replace
        t = _NUM_ASCII.sub("<n>", t)
    if has_unsegmented(t):  # a script without spaces: each character a token (a template's fixed head is seen)
        t = space_out(t)
    return " ".join(t.split()).lower()  # = _SPACE.sub(" ", t).strip(): both split on str.isspace() characters


def _has_digit(text: str) -> bool:
    for d in "0123456789":
        if d in text:
            return True
    return False


def scaffold_keys(skeleton: str) -> tuple[int, int]:
    """Hashes of the skeleton's first and last eight tokens: a template keeps at least one of them."""
    return scaffold_keys_of(skeleton.split(" "))


def scaffold_keys_of(toks: list[str]) -> tuple[int, int]:
    """``scaffold_keys`` of a skeleton already split on spaces."""
    head = " ".join(toks[:8]) if len(toks) >= 4 else ""
    tail = " ".join(toks[-8:]) if len(toks) >= 12 else ""
    return (zlib.crc32(head.encode()) if head else 0, zlib.crc32(tail.encode()) if tail else 0)


_SCANNER = MultiScanner(list(MARKERS.values()))  # one pass for all markers where Hyperscan is installed
_NEEDLES = tuple(_PREFILTER[name] for name in MARKERS)


def marker_bits(lower_head: str) -> int:
    """Instruction-style markers (``MARKER_BIT``) of a lower-cased prompt head; equal to ``reference_marker_bits``."""
    found = _SCANNER.matches(lower_head)
    if found is not None:
        bits = 0
        for i in found:
            for nd in _NEEDLES[i]:
                if nd in lower_head:
                    bits |= 1 << i
                    break
        return bits  # (Hyperscan answers for ASCII text only: no Chinese markers to add)
    return _marker_bits_re(lower_head)


_ZH_CHECKS = tuple((MARKERS_ZH[name], MARKER_BIT[name]) for name in MARKER_NAMES)


def _zh_marker_bits(lower_head: str) -> int:
    """The Chinese forms of the markers (``scripts.MARKERS_ZH``), for text in a script without spaces."""
    if not has_unsegmented(lower_head):
        return 0
    bits = 0
    for rx, bit in _ZH_CHECKS:
        if rx.search(lower_head):
            bits |= bit
    return bits


def _marker_bits_re(lower_head: str) -> int:
    """``marker_bits`` with ``re`` only: each marker's clauses (``_FAST``), skipped when their tokens are absent."""
    bits = _zh_marker_bits(lower_head)
    runs = _letter_runs(lower_head)
    for clauses, needles, bit in _FAST_CHECKS:
        for toks, want, rx, gated in clauses:
            if toks is not None and toks.isdisjoint(runs):
                continue
            if want:
                for nd in want:
                    if nd in lower_head:
                        break
                else:
                    continue
            if rx.search(lower_head) is not None and (not gated or any(nd in lower_head for nd in needles)):
                bits |= bit
                break
    return bits


def reference_marker_bits(lower_head: str) -> int:
    """The definition of the markers: a marker's regex, tried when one of its _PREFILTER needles occurs; and, in
    text with Chinese, Japanese or Thai, its Chinese form."""
    bits = _zh_marker_bits(lower_head)
    for rx, needles, bit in _CHECKS:
        for nd in needles:
            if nd in lower_head:
                if rx.search(lower_head):
                    bits |= bit
                break
    return bits


_WORD_BYTES = bytes(b if 97 <= b <= 122 or b == 39 else 32 for b in range(256))  # a-z and ' kept
_STOP_BYTES = frozenset(w.encode() for w in STOPWORDS)
if native is not None:
    native.set_stopwords(_STOP_BYTES)
_NOT_WORDS = _STOP_BYTES | {bytes([b]) for b in range(97, 123)} | {b"'"}  # stopwords, and runs too short for _WORD


def word_bytes(lower_text: str, limit: int = 64) -> list[bytes]:
    """``words`` as UTF-8 bytes, without a regex: ``_WORD`` (``[a-z][a-z']+``) finds, in each maximal run of a-z
    and apostrophes, the run without its leading apostrophes if at least two characters are left; so the runs of
    the text's bytes with every other byte a separator (UTF-8 bytes of other characters are never a-z or ')."""
    if native is not None:
        return native.content_words(lower_text[: limit * 12].encode("utf-8", "surrogatepass"), limit)
    data = lower_text[: limit * 12].encode("utf-8", "surrogatepass").translate(_WORD_BYTES)
    runs = data.split()
    if data[:1] == b"'" or b" '" in data:  # a run starting with an apostrophe: rare, done the long way
        runs = [r.lstrip(b"'") if r[0] == 39 else r for r in runs]
        return [w for w in runs if len(w) > 1 and w not in _STOP_BYTES][:limit]
    return [w for w in runs if w not in _NOT_WORDS][:limit]


def words(lower_text: str, limit: int = 64) -> list[str]:
    """Content words (stopwords removed) of a lower-cased text, at most ``limit``."""
    return [w.decode() for w in word_bytes(lower_text, limit)]


def reference_words(lower_text: str, limit: int = 64) -> list[str]:
    """The definition of ``words``: ``_WORD``'s matches that are not stopwords."""
    return [w for w in _WORD.findall(lower_text[: limit * 12]) if w not in STOPWORDS][:limit]


ANSWER_CONTINUES = 0.1  # share of the new answer's first content words found in the previous answer (chosen on dev)


def builds_on_answer(prompt_lower: str, prev_answer: str, answer: str | None = None) -> bool:
    """Whether a follow-up turn refers to the previous answer (shared words, or a short anaphoric follow-up) and,
    given the new ``answer``, whether that answer continues the previous one.

    The prompt side alone costs a client nothing to fake: "Also, " before an unrelated question is a short
    anaphoric follow-up. The answer is the model's, not the client's: an elaboration, a correction or a next step
    reuses the previous answer's words (at least ``ANSWER_CONTINUES`` of its first 60 content words), an answer to
    a new question does not. An answer without content words (a bare number, code alone) is not held against it.
    """
    if not prev_answer:
        return False
    aw = set(_units(prev_answer[:2000].lower(), 300))
    if answer is not None:
        nw = _units(answer[:1000].lower(), 60)
        if nw and sum(1 for w in nw if w in aw) < ANSWER_CONTINUES * len(nw):
            return False
    pw = set(_units(prompt_lower, 40))
    if pw and len(pw & aw) / len(pw) >= 0.2:
        return True
    if len(prompt_lower) >= 300:
        return False
    return bool(_FOLLOW_UP.search(prompt_lower) or (has_unsegmented(prompt_lower) and _FOLLOW_UP_ZH.search(prompt_lower)))


_FOLLOW_UP_ZH = re.compile(
    r"你说的|你的(?:回答|答案|代码|例子|建议)|上面|上述|刚才|前面|这个|那个|这些|那些|它|继续|繼續|再|还有|還有|也|为什么"
    r"|為什麼|那么|那麼|如果|可以|能不能|能否|谢谢|謝謝|好的|但是|不过|改成|换成"
)


def _units(lower_text: str, limit: int) -> list[bytes]:
    """Content words, and what the word features miss (``scripts.extra_units``): what ``builds_on_answer``
    compares."""
    units = word_bytes(lower_text, limit)
    if not lower_text.isascii():
        units += [u.encode() for u in extra_units(lower_text[: limit * 12], limit)]
    return units


def normalise(text: str) -> str:
    """Whitespace- and case-folded text, for exact-match lookups."""
    return _SPACE.sub(" ", text).strip().lower()
