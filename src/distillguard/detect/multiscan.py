"""One pass over a text for a whole set of regexes: which of them match anywhere (Hyperscan, when installed).

``re`` tries a set of patterns one after another, each a pass over the text; Hyperscan compiles them into one
automaton and reports, in one pass, every pattern that matches. It is an optional dependency (Intel x86-64 wheels
on PyPI): without it, or for a text it cannot answer exactly, ``MultiScanner.matches`` returns None and the caller
uses ``re``.

Exactness: the answer must be the set of patterns for which ``re.search`` (str patterns, Unicode rules) finds a
match. For ASCII text the two engines read the constructs used here (literals, classes, ``\\b``, ``\\d``, ``\\w``,
``^``/``$``, counted and lazy quantifiers) alike, except ``\\s``: ``re`` also counts the ASCII separators
\\x1c-\\x1f as white space, so ``\\s`` is compiled as a class that includes them. Non-ASCII text is left to ``re``
(Unicode ``\\w``/``\\b`` and character counts differ from a byte automaton).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

try:  # optional: pip install hyperscan (x86-64)
    import hyperscan as _hs
except ImportError:  # pragma: no cover - depends on the platform
    _hs = None

_RE_SPACE = r"[\t\n\v\f\r \x1c-\x1f]"  # what ``re`` matches with \s among ASCII characters


def available() -> bool:
    return _hs is not None


def _for_hyperscan(pattern: str) -> str:
    """``pattern`` with each ``\\s`` outside a character class written as ``re``'s ASCII white-space class."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            if pair == "\\s":
                if in_class:
                    raise ValueError(f"\\s inside a character class is not supported: {pattern!r}")
                out.append(_RE_SPACE)
            else:
                out.append(pair)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def _collect(pattern_id: int, start: int, end: int, flags: int, found: list[int]) -> None:
    found.append(pattern_id)


class MultiScanner:
    """Which of ``patterns`` match a text, in one pass. ``matches`` returns None when the scanner cannot answer
    exactly (Hyperscan missing, or non-ASCII text): use ``re`` then."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        self.patterns = tuple(patterns)
        self._db: Any = None
        self._local = threading.local()  # a Hyperscan scratch space serves one scan at a time: one per thread
        if _hs is None:
            return
        allowed = re.MULTILINE | re.UNICODE
        for p in self.patterns:
            if p.flags & ~allowed:
                raise ValueError(f"unsupported regex flags for {p.pattern!r}: {p.flags}")
        db = _hs.Database()
        db.compile(
            expressions=[_for_hyperscan(p.pattern).encode() for p in self.patterns],
            ids=list(range(len(self.patterns))),
            elements=len(self.patterns),
            flags=[_hs.HS_FLAG_SINGLEMATCH | (_hs.HS_FLAG_MULTILINE if p.flags & re.MULTILINE else 0)
                   for p in self.patterns],
        )
        self._db = db

    @property
    def active(self) -> bool:
        return self._db is not None

    def matches(self, text: str) -> list[int] | None:
        """Indexes of the patterns that match somewhere in ``text`` (each once, in no set order), or None."""
        if self._db is None or not text.isascii():
            return None
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _hs.Scratch(self._db)
        found: list[int] = []
        self._db.scan(text.encode("ascii"), match_event_handler=_collect, context=found, scratch=scratch)
        return found
