"""Keyed per-account black-box text watermark: lexical alternations chosen by a keyed hash of the context."""

from .detect import Position, Score, Verdict, detect, merge, positions, score
from .embed import StreamEmbedder
from .keys import OrgKey, keys_for, org_key
from .lexicon import AltSet, Lexicon, load_lexicon, parse_lexicon
from .watermarker import DEFAULT_THRESHOLD, Watermarker

__all__ = [
    "DEFAULT_THRESHOLD",
    "AltSet",
    "Lexicon",
    "OrgKey",
    "Position",
    "Score",
    "StreamEmbedder",
    "Verdict",
    "Watermarker",
    "detect",
    "keys_for",
    "load_lexicon",
    "merge",
    "org_key",
    "parse_lexicon",
    "positions",
    "score",
]
