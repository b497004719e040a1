"""Alignment check of a matched record against the stored answer's own text.

MinHash says *how much* text two answers share; it cannot tell an adversarial copy from an answer that
was written independently but shares much of its text (a model regenerating the code the user pasted,
standard code such as a Flask hello-world, a templated tool answer that echoes the prompt). The copy
is the stored text with *local* edits (a word deleted, swapped, inserted, a name replaced, the tail
cut), so its tokens align with the original in long runs and the unaligned rest is scattered single
tokens. An independent answer shares runs too, but also has whole sentences, lines or identifiers of
its own. On normalised tokens (PII masked, see :mod:`.normalize`) this module measures:

- ``blocks``: the share of the record's tokens inside aligned runs of at least ``MIN_RUN`` tokens;
- ``gaps``: the share of the record's tokens that align with nothing;
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


@dataclass(frozen=True, slots=True)
class Alignment:
    """How a record's answer aligns with the stored answer it matched."""

    tokens: int  # record tokens aligned (at most MAX_TOKENS)
    blocks: float  # share of record tokens in aligned runs of >= MIN_RUN tokens
    gaps: float  # share of record tokens aligned with nothing
    novel: int  # shared 3-shingles not present in the record's prompt

    def copied(self, max_gaps: float = MAX_GAPS, min_blocks: float = MIN_BLOCKS) -> bool:
        """A copy with local edits (True), or an answer with text of its own (False)."""
        return self.tokens > 0 and self.gaps <= max_gaps and self.blocks >= min_blocks


def align(answer: str, original: str, prompt: str = "", answer_tokens: list[str] | None = None) -> Alignment:
    """Align the record's ``answer`` with the stored ``original`` (normalised tokens, in order)."""
    a = (tokens(answer) if answer_tokens is None else answer_tokens)[:MAX_TOKENS]
    b = tokens(original)[:MAX_TOKENS]
    if not a or not b:
        return Alignment(len(a), 0.0, 1.0, 0)
    matched = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    in_runs = sum(n for _, _, n in matched if n >= MIN_RUN)
    aligned = sum(n for _, _, n in matched)
    shared = shingles(a) & shingles(b)
    novel = len(shared - shingles(tokens(prompt))) if prompt else len(shared)
    n = len(a)
    return Alignment(n, in_runs / n, (n - aligned) / n, novel)
