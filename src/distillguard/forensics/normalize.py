"""Text normalisation that survives desensitization and reformatting, and word shingles.

The adversary's edits we want to be blind to: PII replaced by placeholders (Presidio's ``<PERSON>``,
``[NAME]``, ``***``, fake values), markdown stripped or added, case and whitespace changed. Every
PII-like span (email, URL, phone, number, capitalised name, placeholder) becomes one mask token and
runs of masks collapse, so ``"Call John Smith at 555-0100"`` and ``"Call <PERSON> at <PHONE_NUMBER>"``
normalise to the same tokens. Formatting is dropped by tokenising on word characters; CJK text is
tokenised per character (it has no spaces).
"""

from __future__ import annotations

import re

MASK = "\u00a7"  # one token for every PII-like span
_M = f" {MASK} "

# order matters: placeholders and structured PII before numbers and capitalised words
_PLACEHOLDER = re.compile(
    r"<\s*[A-Z][A-Z0-9_ ]{1,40}\s*>"  # Presidio default: <PERSON>, <EMAIL_ADDRESS>
    r"|\[\s*[A-Z][A-Za-z0-9_ ]{1,40}\s*\]"  # [NAME], [REDACTED], [Email]
    r"|\{\{\s*[A-Za-z][A-Za-z0-9_ ]{1,40}\s*\}\}"  # {{name}}
    r"|\*{3,}|#{3,}(?=\s|$)|X{3,}|x{4,}|█+"  # masking characters
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ()./-]{6,}\d(?!\w)")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# a capitalised word that does not start a sentence (names, places, organisations)
# (written to start with a character class, which the regex engine scans for quickly; the lookbehind
# checks the two characters before the capital)
_NAME = re.compile(r"[A-Z](?<=[a-z0-9,;:)\]] [A-Z])(?:[a-z'’]+|[A-Z]+)(?:[ -](?:[A-Z][a-z'’]+|[A-Z]{2,}))*")
_CODE_FENCE = re.compile(r"```[\w+-]*")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|{MASK}")


_DIGIT = re.compile(r"\d")
_PHONE_HINT = re.compile(r"\d[\d ()./-]{6,}\d")  # every phone match contains one
# ASCII text (plus the mask) is tokenised by a byte table: letters, digits and the mask kept, the rest split
_ASCII_TABLE = bytes(c if (48 <= c <= 57 or 97 <= c <= 122 or c == 0xA7) else 32 for c in range(256))
_MASK_RUN = re.compile(rf"{MASK}(?:[\W_]*{MASK})+")  # masks with no token between them: one mask
# a pass can only match text containing one of its triggers; skipping the others keeps the result exact
_PLACEHOLDER_TRIGGERS = ("<", "[", "{{", "***", "###", "XXX", "xxxx", "\u2588")


def mask_pii(text: str) -> str:
    """The text with every PII-like span replaced by the mask token."""
    if any(t in text for t in _PLACEHOLDER_TRIGGERS):
        text = _PLACEHOLDER.sub(_M, text)
    low = text.lower()
    if "http" in low or "www." in low:
        text = _URL.sub(_M, text)
    if "@" in text:
        text = _EMAIL.sub(_M, text)
    digits = _DIGIT.search(text) is not None
    if digits and _PHONE_HINT.search(text):
        text = _PHONE.sub(_M, text)
    text = _NAME.sub(_M, text)
    if digits:
        text = _NUMBER.sub(_M, text)
    return text


def tokens(text: str) -> list[str]:
    """Normalised tokens: PII masked, lowercased, markup dropped, repeated masks collapsed."""
    if "```" in text:
        text = _CODE_FENCE.sub(" ", text)
    masked = mask_pii(text).lower()
    if MASK in masked:
        masked = _MASK_RUN.sub(MASK, masked)
    if text.isascii():  # the masked text is ASCII plus the mask: split on a byte table (same tokens)
        return masked.encode("latin-1").translate(_ASCII_TABLE).decode("latin-1").split()
    return _TOKEN.findall(masked)


def shingles(toks: list[str], k: int = 3) -> set[str]:
    """The set of k-token shingles (one shingle of all tokens when there are fewer than k)."""
    if not toks:
        return set()
    if len(toks) < k:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + k]) for i in range(len(toks) - k + 1)}


def normalize(text: str) -> str:
    """The normalised text as one string (for exact comparisons and display)."""
    return " ".join(tokens(text))
