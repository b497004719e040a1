"""Shaping a recorded answer as a model would emit it: stop sequences, token limits, stream pieces.

All token arithmetic uses the model's real tokenizer, so ``max_tokens=N`` returns text of at most N
tokens (exactly N unless a multi-byte character straddles the cut) and stream pieces concatenate to
the non-streaming text byte for byte.
"""

from __future__ import annotations

import codecs
import hashlib
import random
from dataclasses import dataclass
from typing import Any

import tiktoken

CHUNK_TOKENS = (1, 2, 3, 4)
CHUNK_WEIGHTS = (0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True, slots=True)
class Shaped:
    text: str
    finish_reason: str  # "stop" | "length"
    tokens: int  # exact token count of ``text``


def stop_list(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """Text before the earliest stop sequence; whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def encode(enc: tiktoken.Encoding, text: str) -> list[int]:
    return enc.encode(text, disallowed_special=())


def truncate_tokens(enc: tiktoken.Encoding, text: str, limit: int) -> tuple[str, int, bool]:
    """(text cut to at most ``limit`` tokens, its token count, whether it was cut)."""
    ids = encode(enc, text)
    if len(ids) <= limit:
        return text, len(ids), False
    n = max(limit, 0)
    while n >= 0:
        # a prefix of the token ids is a prefix of the bytes; drop a split multi-byte character
        cut = enc.decode_bytes(ids[:n]).decode("utf-8", errors="ignore")
        count = len(encode(enc, cut))
        if count <= limit:
            return cut, count, True
        n -= 1
    return "", 0, True  # pragma: no cover - n == 0 always fits


def shape(enc: tiktoken.Encoding, text: str, *, stop: Any = None, max_tokens: int | None = None) -> Shaped:
    """Apply ``stop`` then ``max_tokens`` as generation would: a stop inside the budget wins."""
    text, _ = cut_at_stop(text, stop_list(stop))
    if max_tokens is not None:
        text, count, cut = truncate_tokens(enc, text, int(max_tokens))
        if cut:
            return Shaped(text, "length", count)
        return Shaped(text, "stop", count)
    return Shaped(text, "stop", len(encode(enc, text)))


def pieces(enc: tiktoken.Encoding, text: str) -> list[str]:
    """Stream deltas of 1–4 tokens each (sizes seeded by the text, so deterministic), never splitting a
    character; ``"".join(pieces(...)) == text``."""
    ids = encode(enc, text)
    rng = random.Random(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest())
    dec = codecs.getincrementaldecoder("utf-8")()
    out: list[str] = []
    i = 0
    while i < len(ids):
        n = rng.choices(CHUNK_TOKENS, CHUNK_WEIGHTS)[0]
        piece = dec.decode(enc.decode_bytes(ids[i:i + n]))
        i += n
        if piece:
            out.append(piece)
    tail = dec.decode(b"", final=True)
    if tail:
        out.append(tail)
    return out
