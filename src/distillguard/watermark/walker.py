"""The walk shared by embedding and detection: finds the alternation slots of a text, in order.

Input arrives as (whitespace, chunk) pairs. A chunk that may begin a two-word phrase is held until the next
chunk; a slot whose rule looks at the next word is held until that word arrives. Each complete slot goes to
a ``decide`` callback that returns the variant to write (or None to keep the text). The walk only depends
on the pairs, so a stream split anywhere gives the same result as the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .lexicon import AltSet, Lexicon
from .scan import WORD_RE, Protector

_NORM_RE = re.compile(r"[^a-z0-9']")
ARTICLES = frozenset({"a", "an"})
I_WORDS = frozenset({"i", "i'm", "i'll", "i've", "i'd"})


def norm_word(chunk: str) -> str:
    """The context form of a chunk: lowercase letters/digits/apostrophes, "an" read as "a"."""
    w = _NORM_RE.sub("", chunk.lower().replace("’", "'"))
    return "a" if w == "an" else w


@dataclass(slots=True)
class Item:
    ws: str
    chunk: str
    protected: bool
    sent_start: bool
    lead: str = ""
    core: str = ""
    trail: str = ""

    @property
    def word(self) -> str:
        return self.core.lower().replace("’", "'")


@dataclass(slots=True)
class Slot:
    """One occurrence of a variant of an alternation set, with what the rules need to know about it."""

    alt: AltSet
    index: int  # which variant the text has
    items: list[Item]
    context: str  # the previous word (normalised)
    next_word: str | None = None  # the following chunk, normalised (None: end of text)
    next_is_word: bool = False
    after_comma: bool = False  # the previous chunk ended with ","

    @property
    def comma_follows(self) -> bool:
        return self.items[-1].trail.lstrip("*_)]\"”’'").startswith(",")

    def detectable(self) -> bool:
        """The rules that depend only on the surroundings (identical for every variant): used by both sides."""
        a = self.alt
        if a.not_after and self.context in a.not_after:
            return False
        if a.not_before and self.next_word in a.not_before:
            return False
        if a.only_after and self.context not in a.only_after:
            return False
        if a.only_before and self.next_word not in a.only_before:
            return False
        if a.word_next and (not self.next_is_word or self.items[-1].trail):
            return False
        if a.comma and not self.comma_follows:
            return False
        if a.after_comma and not self.after_comma:
            return False
        if a.start and not self.items[0].sent_start:
            return False
        if a.mixed_article and self.context == "a":
            return False
        core = self.items[0].core
        if len(core) > 1 and core.isupper():
            return False  # shouting / acronym-like: left alone
        # capitalised mid-sentence: a name or a title (except "I ...")
        return not (core[0].isupper() and not self.items[0].sent_start and self.alt.variants[self.index][0] not in I_WORDS)


Decide = Callable[[Slot], "tuple[str, ...] | None"]


class Walker:
    """``keep_text=False`` (detection) only finds the slots: the output text is not assembled."""

    def __init__(self, lexicon: Lexicon, decide: Decide, keep_text: bool = True) -> None:
        self.lex = lexicon
        self.decide = decide
        self.prot = Protector()
        self.out: list[str] = []
        self.keep_text = keep_text
        self.last = ""  # the last word written; the next slot's context is its ``norm_word``
        self.prefix: Item | None = None
        self.waiting: Slot | None = None
        self.after_comma = False
        self._phrases = lexicon.phrases
        self._prefixes = lexicon.prefixes

    @property
    def context(self) -> str:
        return norm_word(self.last)

    # ---- input ---------------------------------------------------------------------------
    def pair(self, ws: str, chunk: str) -> None:
        protected, sent = self.prot.see(ws, chunk)
        m = None if protected else WORD_RE.match(chunk)
        if self.waiting is None and self.prefix is None:  # the common case: no slot can start or end here
            if m is None:
                self._emit_chunk(ws, chunk, protected)
                return
            key = (m.group(2).lower().replace("’", "'"),)
            if key not in self._phrases and key not in self._prefixes:
                self._emit_chunk(ws, chunk, protected)
                return
        item = Item(ws, chunk, protected, sent)
        if m is not None:
            item.lead, item.core, item.trail = m.group(1), m.group(2), m.group(3)
        if self.waiting is not None:
            slot, self.waiting = self.waiting, None
            slot.next_word = norm_word(chunk)
            slot.next_is_word = chunk[:1].isalpha()
            self._resolve(slot)
        self._take(item)

    def finish(self) -> None:
        if self.waiting is not None:
            slot, self.waiting = self.waiting, None
            self._resolve(slot)
        if self.prefix is not None:
            self._emit(self.prefix)
            self.prefix = None

    # ---- matching ------------------------------------------------------------------------
    def _take(self, item: Item) -> None:
        if self.prefix is not None:
            first, self.prefix = self.prefix, None
            if item.core and not item.lead and item.ws == " ":
                hit = self.lex.phrases.get((first.word, item.word))
                if hit is not None:
                    self._complete([first, item], *hit)
                    return
            self._emit(first)
        if not item.core:
            self._emit(item)
            return
        w = item.word
        hit = self._phrases.get((w,))
        if hit is not None:
            self._complete([item], *hit)
        elif (w,) in self._prefixes and not item.trail:
            self.prefix = item
        else:
            self._emit(item)

    def _complete(self, items: list[Item], set_id: int, index: int) -> None:
        alt = self.lex.sets[set_id]
        slot = Slot(alt, index, items, norm_word(self.last), after_comma=self.after_comma)
        if alt.word_next or alt.not_before or alt.only_before:
            self.waiting = slot
        else:
            self._resolve(slot)

    def _resolve(self, slot: Slot) -> None:
        words = self.decide(slot)
        if words is None:
            for it in slot.items:
                self._emit(it)
            return
        first, last = slot.items[0], slot.items[-1]
        if self.keep_text:
            text = " ".join(words)
            if first.core[0].isupper() or text.startswith(("i ", "i'")) or text == "i":
                text = text[0].upper() + text[1:]
            if "’" in "".join(it.core for it in slot.items):
                text = text.replace("'", "’")
            self.out.append(first.ws + first.lead + text + last.trail)
        self.last = words[-1]
        self.after_comma = last.trail.endswith(",")

    def _emit(self, item: Item) -> None:
        self._emit_chunk(item.ws, item.chunk, item.protected)

    def _emit_chunk(self, ws: str, chunk: str, protected: bool) -> None:
        if self.keep_text:
            self.out.append(ws + chunk)
        self.last = chunk
        self.after_comma = not protected and chunk.endswith(",")

    def take_output(self) -> str:
        s = "".join(self.out)
        self.out.clear()
        return s
