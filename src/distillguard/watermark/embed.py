"""Embedding: rewrite each slot to the keyed variant; streaming with the same result for any split."""

from __future__ import annotations

import re

from .keys import OrgKey
from .lexicon import Lexicon
from .walker import Slot, Walker

_PAIR_RE = re.compile(r"(\s*)(\S+)")


def embed_choice(key: OrgKey, slot: Slot) -> tuple[str, ...] | None:
    """The variant to write for a slot, or None to keep the text as it is.

    Every slot that detection scores is written (the rules live in ``Slot.detectable``), so unmodified
    watermarked text scores a hit on every scored bit.
    """
    if not slot.detectable():
        return None
    g = key.choice(slot.context, slot.alt.id, len(slot.alt.variants))
    return None if g == slot.index else slot.alt.variants[g]


class StreamEmbedder:
    """Incremental embedder: ``feed(delta)`` returns the text that is final so far, ``flush()`` the rest.

    Holds back at most the word being received, one pending word of a two-word phrase, and for
    contractions one word of look-ahead.
    """

    def __init__(self, lexicon: Lexicon, key: OrgKey | None) -> None:
        self._walker = Walker(lexicon, (lambda s: embed_choice(key, s)) if key else (lambda s: None))
        self._buf = ""
        self._done = False

    def feed(self, delta: str) -> str:
        if self._done:
            raise RuntimeError("feed() after flush()")
        buf = self._buf + delta
        pos = 0
        n = len(buf)
        for m in _PAIR_RE.finditer(buf):
            if m.end() >= n:
                break  # the last chunk may still grow
            self._walker.pair(m.group(1), m.group(2))
            pos = m.end()
        self._buf = buf[pos:]
        return self._walker.take_output()

    def flush(self) -> str:
        if self._done:
            return ""
        self._done = True
        buf, tail = self._buf, ""
        pos = 0
        for m in _PAIR_RE.finditer(buf):
            self._walker.pair(m.group(1), m.group(2))
            pos = m.end()
        tail = buf[pos:]
        self._walker.finish()
        self._buf = ""
        return self._walker.take_output() + tail
