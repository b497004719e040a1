"""Alignment check of a matched record against the stored answer's own text.

MinHash says *how much* text two answers share; it cannot tell an adversarial copy from an answer that
was written independently but shares much of its text (a model regenerating the code the user pasted,
standard code such as a Flask hello-world, a templated tool answer that echoes the prompt). The copy
is the stored text with *local* edits (a word deleted, swapped, inserted, a name replaced, the tail
cut), so its tokens align with the original in long runs and the unaligned rest is scattered single
tokens. An independent answer shares runs too, but also has whole sentences, lines or identifiers of
its own. On normalised tokens (PII masked, see :mod:`.normalize`) this module measures:

- ``blocks``: the share of the record's tokens inside aligned runs of at least ``MIN_RUN`` tokens;
  passages of at least ``MOVED_RUN`` tokens found elsewhere in the stored answer count as aligned too (a copy
  whose sentences, list items or functions were reordered: in order alone, such a copy aligned only one
  ordered part, and trace found 0.19 of copies with shuffled sentences);
- ``gaps``: the share of the record's tokens that align with nothing;
- ``omitted``: the share of the stored answer's tokens, inside the stretch the record copies (first to last
  aligned token), that the record leaves out: a copy drops a word here and there (or cuts the tail, outside the
  stretch), an independent answer that shares the frame skips the stored answer's own phrases and identifiers;
- ``novel``: shared shingles that the record's own prompt does not already imply (for the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from .normalize import shingles, tokens

MIN_RUN = 3  # an aligned run this long is copied text, not a coincidental common word
MAX_GAPS = 0.12  # tuned on the dev split (forensics/evaluate.py), never on the test split
MIN_BLOCKS = 0.75  # tuned on the dev split (with the corroboration of short matches, forensics/corroborate.py)
MAX_TOKENS = 3000  # longer texts are aligned on their first MAX_TOKENS tokens (bounded cost)
MOVED_RUN = 6  # a passage this long that matches an unaligned part of the stored answer elsewhere was moved
MAX_TILES = 64  # moved passages looked for per alignment (bounded cost on long repetitive texts)


@dataclass(frozen=True, slots=True)
class Alignment:
    """How a record's answer aligns with the stored answer it matched."""

    tokens: int  # record tokens aligned (at most MAX_TOKENS)
    blocks: float  # share of record tokens in aligned runs of >= MIN_RUN tokens
    gaps: float  # share of record tokens aligned with nothing
    novel: int  # shared 3-shingles not present in the record's prompt
    omitted: float = 0.0  # share of stored tokens between the first and last aligned one that the record lacks

    def copied(self, max_gaps: float = MAX_GAPS, min_blocks: float = MIN_BLOCKS) -> bool:
        """A copy with local edits (True), or an answer with text of its own (False)."""
        return self.tokens > 0 and self.gaps <= max_gaps and self.blocks >= min_blocks


def align(answer: str, original: str, prompt: str = "", answer_tokens: list[str] | None = None) -> Alignment:
    """Align the record's ``answer`` with the stored ``original`` (normalised tokens, in order)."""
    a = (tokens(answer) if answer_tokens is None else answer_tokens)[:MAX_TOKENS]
    b = tokens(original)[:MAX_TOKENS]
    if not a or not b:
        return Alignment(len(a), 0.0, 1.0, 0, 1.0)
    sm = SequenceMatcher(None, a, b, autojunk=False)
    matched = [(i, j, n) for i, j, n in sm.get_matching_blocks() if n]
    runs = [(i, j, n) for i, j, n in matched if n >= MIN_RUN]
    if len(a) - sum(n for _, _, n in matched) >= MOVED_RUN:
        runs += _tiles(sm, len(a), len(b), runs)
    covered, used = bytearray(len(a)), bytearray(len(b))
    for i, j, n in runs:
        covered[i:i + n] = used[j:j + n] = b"\x01" * n
    in_runs = covered.count(1)
    for i, j, n in matched:
        if n < MIN_RUN:  # a short match in order still aligns its tokens
            covered[i:i + n] = used[j:j + n] = b"\x01" * n
    aligned = covered.count(1)
    first, last = used.find(1), used.rfind(1)
    omitted = (last - first + 1 - used.count(1)) / (last - first + 1) if first >= 0 else 1.0
    n = len(a)
    shared = shingles(a) & shingles(b)
    novel = len(shared - shingles(tokens(prompt))) if prompt else len(shared)
    return Alignment(n, in_runs / n, (n - aligned) / n, novel, omitted)


def _free(size: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (start, end) ranges of ``range(size)`` outside ``spans``."""
    out, pos = [], 0
    for start, end in sorted(spans):
        if start > pos:
            out.append((pos, start))
        pos = max(pos, end)
    if pos < size:
        out.append((pos, size))
    return out


def _tiles(sm: SequenceMatcher, n_a: int, n_b: int, runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Moved passages: outside the ordered alignment's ``runs``, both texts tiled greedily, the longest common
    passage first, with passages of at least ``MOVED_RUN`` tokens, each token of either text used once (greedy
    string tiling, as plagiarism detectors do). Returns them as (record start, stored start, length)."""
    free_a = [r for r in _free(n_a, [(i, i + n) for i, _, n in runs]) if r[1] - r[0] >= MOVED_RUN]
    free_b = [r for r in _free(n_b, [(j, j + n) for _, j, n in runs]) if r[1] - r[0] >= MOVED_RUN]
    tiles: list[tuple[int, int, int]] = []
    while free_a and free_b and len(tiles) < MAX_TILES:
        best = None
        for ka, (a0, a1) in enumerate(free_a):
            for kb, (b0, b1) in enumerate(free_b):
                m = sm.find_longest_match(a0, a1, b0, b1)
                if m.size >= MOVED_RUN and (best is None or m.size > best[2].size):
                    best = (ka, kb, m)
        if best is None:
            break
        ka, kb, m = best
        tiles.append((m.a, m.b, m.size))
        (a0, a1), (b0, b1) = free_a.pop(ka), free_b.pop(kb)
        free_a += [r for r in ((a0, m.a), (m.a + m.size, a1)) if r[1] - r[0] >= MOVED_RUN]
        free_b += [r for r in ((b0, m.b), (m.b + m.size, b1)) if r[1] - r[0] >= MOVED_RUN]
    return tiles
