"""Which language a text is in (coarsely), and whether an answer renders its prompt's text in another language.

``features.answer_novelty`` reads an answer made of its prompt's phrases as grounded (a job over the customer's
data: a summary, an extraction, a RAG answer) and an answer of new phrases as what the model added. Phrases are only
comparable within one language: a translation of the customer's text shares none of its words, and read so, a
translation product (single-shot, nothing built on the answers) looked like a harvester of free generation and was
flagged (0.99). Here a text's language is told apart coarsely, by script, and within the Latin script by the shares
of a few languages' function words; an answer in another language than its prompt, and not much longer than it, is the
prompt's content rendered anew, as grounded as a summary. A harvester gains nothing it could not have as well by
collecting summaries: the answer must be bounded by text the prompt supplies, of about its size, and a text that
keeps coming back (a fixed block pasted before every instruction) stops counting.
"""

from __future__ import annotations

import re
import zlib

from .scripts import UNSEGMENTED

SAMPLE_CHARS = 800  # a text's language is read from its start (about 130 words)
MIN_LETTERS = 40  # fewer letters than this (a character of the scripts without spaces counts UNSEGMENTED_WEIGHT)
MIN_WORDS = 25  # fewer words than this: no language (a short text's function words are too few to tell)
FUNCTION_MIN = 0.15  # share of a language's function words from which Latin-script prose is in that language ...
FUNCTION_LEAD = 1.5  # ... when it leads the next language's share by this factor (else: not told)
CODE_MAX = 0.05  # share of code-like symbols up to which a Latin-script text is prose (code and markup are not) ...
CODE_LINES_MAX = 0.3  # ... and of its lines (from 4 on) indented (not as list items) or ending like code ("{", ";")
MAX_GROWTH = 3.0  # an answer this many times its prompt's size (or more) is more than the prompt's text rendered anew
MIN_SHARE = 0.4  # ... and one under this share of it leaves most of the prompt unrendered (a padded prompt)
UNSEGMENTED_WEIGHT = 3  # a character of a script without spaces carries about as much as three Latin letters

_SCRIPTS = {
    "han": re.compile(f"[{UNSEGMENTED}]"),  # (with Kana and Thai: the scripts without spaces)
    "cyrillic": re.compile("[\u0400-\u04ff]"),
    "greek": re.compile("[\u0370-\u03ff]"),
    "arabic": re.compile("[\u0600-\u06ff]"),
    "hebrew": re.compile("[\u0590-\u05ff]"),
    "hangul": re.compile("[\uac00-\ud7af\u1100-\u11ff]"),
    "devanagari": re.compile("[\u0900-\u097f]"),
}
# Function words of the commonest languages in the Latin script: a text in one of them is a fifth to a half made of
# its own. Positive evidence for each language: code, names, lists of terms have few of any and are not told.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the a an and or of to in on for with is are was were be it this that as at by from not but "
                    "have has had you we they he she i his her its their our your".split()),
    "fr": frozenset("le la les de des du un une et est en que qui pour dans sur pas ne au aux ce cette il elle nous "
                    "vous ils avec sont par plus ou se sa son ses".split()),
    "es": frozenset("el la los las de del un una y es en que por para con no se su al lo como más pero sus le ya "
                    "este esta son".split()),
    "de": frozenset("der die das und ist nicht ein eine zu den von mit sich des auf für im dem sie es auch an als "
                    "wie ich wir".split()),
    "pt": frozenset("o a os as de do da dos das um uma e é em que para com não no na por se mais como ao à".split()),
    "it": frozenset("il lo la gli le di del della un una e è che per con non in si sono come più ma anche da "
                    "nel alla".split()),
    "nl": frozenset("de het een en van is dat op te in niet zijn voor met die er aan ook als maar wordt".split()),
}
# per function word: the languages (bits, in FUNCTION_WORDS order) it belongs to
_FUNCTION_BITS: dict[str, int] = {}
for _k, _words in enumerate(FUNCTION_WORDS.values()):
    for _w in _words:
        _FUNCTION_BITS[_w] = _FUNCTION_BITS.get(_w, 0) | 1 << _k
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")
_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
# a letter beyond ASCII, of any script (Latin-1 and extended Latin letters, Greek to Devanagari, Hangul, Kana, Han)
_LETTER_BEYOND_ASCII = re.compile(f"[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0370-\u097f\u1100-\u11ff"
                                  f"\uac00-\ud7af{UNSEGMENTED}]")
_OTHER_SCRIPT = re.compile(f"[\u0370-\u097f\u1100-\u11ff\uac00-\ud7af{UNSEGMENTED}]")
_CODE = re.compile(r"[{}\[\]<>=_/\\|`@$%^&~+]")  # (not markdown's * and #)
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d+[.)])\s")  # an indented list item is prose
_WORD = re.compile("[a-z\u00e0-\u024f']+")


def script(text: str) -> str | None:
    """The script most of ``text``'s start is written in (``"latin"``, ``"han"``, ``"cyrillic"`` ...; a character of
    the scripts without spaces counts ``UNSEGMENTED_WEIGHT`` letters), None under ``MIN_LETTERS`` letters."""
    s = text[:SAMPLE_CHARS]
    if s.isascii():
        b = s.encode("ascii")
        return "latin" if len(b) - len(b.translate(None, _ASCII_LETTERS)) >= MIN_LETTERS else None
    best, count = "latin", len(_LATIN.findall(s))
    if _OTHER_SCRIPT.search(s) is not None:
        for name, rx in _SCRIPTS.items():
            k = len(rx.findall(s)) * (UNSEGMENTED_WEIGHT if name == "han" else 1)
            if k > count:
                best, count = name, k
    return best if count >= MIN_LETTERS else None


def language(text: str) -> str | None:
    """A language of the Latin script (``FUNCTION_WORDS``: ``"en"``, ``"fr"`` ...), or the script's name for other
    scripts (``"han"``, ``"cyrillic"`` ...); None when there is too little text, or Latin-script text that is not
    prose or not clearly in one of those languages."""
    sc = script(text)
    if sc != "latin":
        return sc
    s = text[:SAMPLE_CHARS]
    if not _prose(s):
        return None
    words = _WORD.findall(s.lower())
    if len(words) < MIN_WORDS:
        return None
    counts = [0] * len(FUNCTION_WORDS)
    for w in words:
        bits = _FUNCTION_BITS.get(w)
        while bits:
            low = bits & -bits
            counts[low.bit_length() - 1] += 1
            bits ^= low
    shares = sorted(((c / len(words), lang) for c, lang in zip(counts, FUNCTION_WORDS)), reverse=True)
    (top, lang), (second, _) = shares[0], shares[1]
    return lang if top >= FUNCTION_MIN and top >= FUNCTION_LEAD * second else None


def _prose(s: str) -> bool:
    """Whether Latin-script text reads as prose: few code symbols, and not mostly lines indented or ending as code."""
    if len(_CODE.findall(s)) > CODE_MAX * len(s):
        return False
    lines = [line for line in s.splitlines() if line.strip()]
    if len(lines) < 4:
        return True
    code = sum(1 for line in lines if (line[0] in " \t" and not _LIST_ITEM.match(line)) or line.rstrip()[-1] in "{;")
    return code <= CODE_LINES_MAX * len(lines)


def size(text: str) -> int:
    """The UTF-8 length: a character of the scripts without spaces (3 bytes) weighs about ``UNSEGMENTED_WEIGHT``
    Latin letters (1 byte); other alphabets' letters take 2."""
    return len(text.encode("utf-8", "surrogatepass"))


def renders_prompt(answer: str, prompt: str) -> bool:
    """Whether ``answer`` is in another language than ``prompt`` and of a size in ``MIN_SHARE`` .. ``MAX_GROWTH``
    times the prompt's: the prompt's text translated (or rewritten) into another language, not new text. In two
    different scripts, a Latin-script side must read as prose (code written from a Chinese specification renders
    nothing); in the Latin script both languages must be told (``language``). Cheap tests first: texts whose starts
    have no letter beyond ASCII are taken for one language (English, or another written without accents: such
    pairs, Dutch and English say, are not told apart), then the sizes."""
    a_head, p_head = answer[:SAMPLE_CHARS], prompt[:SAMPLE_CHARS]
    if (a_head.isascii() or _LETTER_BEYOND_ASCII.search(a_head) is None) and \
            (p_head.isascii() or _LETTER_BEYOND_ASCII.search(p_head) is None):
        return False
    k = size(answer) / max(1, size(prompt))
    if not MIN_SHARE <= k <= MAX_GROWTH:
        return False
    a, p = script(answer), script(prompt)
    if a is None or p is None:
        return False
    if a != p:
        return all(_prose(text[:SAMPLE_CHARS]) for text, sc in ((answer, a), (prompt, p)) if sc == "latin")
    if a != "latin":
        return False  # one script other than Latin: its languages are not told apart
    la = language(answer)
    if la is None:
        return False
    lp = language(prompt)
    return lp is not None and lp != la


_PARAGRAPH = re.compile(r"\n\s*\n")


def rendering_key(answer: str, prompt: str) -> int:
    """0 unless ``renders_prompt``; then a key (CRC-32, never 0) of the prompt's longest paragraph, the text being
    rendered. A translation service renders a new text each time; a prompt padded with one fixed block of another
    language to pass for one gives the same key again and again (``AccountState.add`` stops counting those)."""
    if not renders_prompt(answer, prompt):
        return 0
    longest = max(_PARAGRAPH.split(prompt[:20000]), key=len)
    return zlib.crc32(longest.strip().encode("utf-8", "surrogatepass")) or 1

