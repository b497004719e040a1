"""The alternation lexicon: sets of meaning-preserving variants, each a "channel" the watermark writes into.

The shipped lexicon (``data/watermark/lexicon.txt``) is hand-written for this project. A set has 2 or 4
variants, so a keyed choice among them carries exactly 1 or 2 fair bits under the null hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

VOWELS = frozenset("aeiou")


@dataclass(frozen=True, slots=True)
class AltSet:
    """One alternation set: its variants (tuples of lowercase words) and the embedder's restrictions."""

    id: int
    variants: tuple[tuple[str, ...], ...]
    start: bool = False  # only at the start of a sentence
    comma: bool = False  # only when followed by ","
    word_next: bool = False  # only when the next word is a lowercase word
    after_comma: bool = False  # only right after a word that ends with ","
    not_after: frozenset[str] = frozenset()
    not_before: frozenset[str] = frozenset()
    only_after: frozenset[str] = frozenset()  # if set: only after one of these words
    only_before: frozenset[str] = frozenset()  # if set: only before one of these words

    @property
    def bits(self) -> int:
        return 2 if len(self.variants) == 4 else 1

    @property
    def mixed_article(self) -> bool:
        """True when variants differ in whether "a" or "an" goes before them."""
        return len({v[0][0] in VOWELS for v in self.variants}) > 1


@dataclass(frozen=True, slots=True)
class Lexicon:
    sets: tuple[AltSet, ...]
    # phrase (tuple of words) -> (set id, variant index); every variant of every set
    phrases: dict[tuple[str, ...], tuple[int, int]]
    # every proper prefix of a multi-word phrase
    prefixes: frozenset[tuple[str, ...]]
    first_words: frozenset[str]


def parse_lexicon(text: str) -> Lexicon:
    sets: list[AltSet] = []
    phrases: dict[tuple[str, ...], tuple[int, int]] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        body, _, flags = line.partition("@")
        variants = tuple(tuple(v.strip().lower().split()) for v in body.split("|"))
        if len(variants) not in (2, 4) or any(not v for v in variants):
            raise ValueError(f"lexicon line {n}: need 2 or 4 non-empty variants")
        opts: dict[str, object] = {}
        for flag in flags.split():
            if flag.startswith("X="):
                opts["not_after"] = frozenset(flag[2:].split(","))
            elif flag.startswith("Y="):
                opts["not_before"] = frozenset(flag[2:].split(","))
            elif flag.startswith("A="):
                opts["only_after"] = frozenset(flag[2:].split(","))
            elif flag.startswith("B="):
                opts["only_before"] = frozenset(flag[2:].split(","))
            else:
                opts.update(start="S" in flag, comma="C" in flag, word_next="W" in flag, after_comma="P" in flag)
        s = AltSet(id=len(sets), variants=variants, **opts)  # type: ignore[arg-type]
        for i, v in enumerate(variants):
            if v in phrases:
                raise ValueError(f"lexicon line {n}: {' '.join(v)!r} is in two sets")
            phrases[v] = (s.id, i)
        sets.append(s)
    prefixes = frozenset(p[:k] for p in phrases for k in range(1, len(p)))
    clash = prefixes & phrases.keys()
    if clash:
        raise ValueError(f"lexicon: phrases that are prefixes of others: {sorted(clash)}")
    if any(len(p) > 2 for p in phrases):
        raise ValueError("lexicon: phrases have at most two words (streaming buffers one word)")
    return Lexicon(tuple(sets), phrases, prefixes, frozenset(p[0] for p in phrases))


def lexicon_path() -> Path:
    return Path(str(resources.files("distillguard") / "data" / "watermark" / "lexicon.txt"))


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """The shipped lexicon (or one from ``path``)."""
    return parse_lexicon(Path(path or lexicon_path()).read_text(encoding="utf-8"))
