"""Evidence proportional to the information in a match: when a text match alone is not enough.

A long answer that aligns with a stored answer as a copy with local edits is attributed on its text. A
short or generic one (a templated tool call, a textbook factorial, a canned reply) can be written
independently almost word for word, so the text match needs corroboration by an independent signal:

- ``distinct``: weighted shared shingles (common text counts for less, :mod:`.weights`); from
  ``STRONG_DISTINCT`` up the text carries enough information on its own;
- a near-exact copy (few unaligned tokens, nearly all in runs, and little of the stored text inside the copied
  stretch left out): independent answers differ in details;
- the prompt: the record's prompt matches the stored request's prompt;
- watermark slots: the gateway writes keyed variants into every answer, so at the lexicon slots that
  the record shares with the stored answer (same context word, same alternation set) a copy has the
  stored variant, while an independently written text agrees only by chance (1/2 or 1/4 per slot).
  Agreement at ``WM_AGREE`` or more shared slots, with none disagreeing, corroborates a match, and even
  a heavier-edited copy that alignment alone rejects (``RESCUE_RULE``); ``WM_VETO`` disagreeing slots
  reject any match that is not a near-exact strong copy. This holds only for a stored answer that
  carries its org's mark (an unmarked one, e.g. of an exempt org, agrees with any near-identical
  text), so the slots count only when every slot of the stored answer has its org's keyed variant
  (with the watermark's public ``positions`` and the org's keys; without keys they are not used).

A short match that leaves out more than ``SHORT_OMITTED`` of the stored text inside the stretch it spans ("2+2 is
4. Is there anything else ...?" against a stored "1+1 is equal to 2. This is a basic ... Is there anything else
...?") shares a frame, not a text: the prompt alone does not attribute it.
A record whose prompt is present but does not match is not vetoed: adversaries rewrite instructions.
But a record whose answer differs from the stored one in numbers that its own prompt supplies (``renumbered``:
"the area of a circle with radius 10 is ..." against a stored "... radius 7 ...") is the same template answered
for another input, not a copy, and like an ambiguous match it is attributed only by agreeing watermark slots.
All thresholds are tuned on the dev split (forensics/evaluate.py), never on the test split.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

STRONG_DISTINCT = 30.0  # weighted shared shingles from which the text match stands alone
EXACT_GAPS, EXACT_BLOCKS, EXACT_OMITTED = 0.06, 0.9, 0.1  # a near-exact copy
SHORT_OMITTED = 0.3  # a short match that leaves out more of the stored stretch shares a frame, not a text
PROMPT_AGREE = 0.9  # prompt Jaccard (MinHash estimate) that corroborates a match
WM_AGREE = 3  # shared watermark slots, all agreeing, that corroborate a match
WM_VETO = 2  # shared watermark slots disagreeing that reject a match
RESCUE_RULE = (0.35, 0.6)  # (max gaps, min blocks) for a heavier-edited copy corroborated by the watermark


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def renumbered(answer: str, prompt: str, stored: str) -> bool:
    """Whether the record's answer has numbers that the stored answer lacks, every one of them taken from the
    record's own prompt: the answer restates its input, so it answers another question with the same template.

    A harvested copy keeps the stored answer's numbers, or (desensitized) replaces them with placeholders or
    random values that its prompt does not contain. An adversary who renumbers prompt and answer consistently
    makes a text copy look like a template instance: then only the watermark slots attribute it.
    """
    if not prompt or not _NUMBER.search(answer):
        return False
    extra = set(_NUMBER.findall(answer)) - set(_NUMBER.findall(stored))
    return bool(extra) and extra <= set(_NUMBER.findall(prompt))


@dataclass(frozen=True, slots=True)
class SlotAgreement:
    shared: int  # lexicon slots (context, set) present in both texts
    agree: int  # of those, slots where both texts have the same variant
    marked: bool  # every slot of the stored answer has the keyed variant of one of its org's keys

    @property
    def disagree(self) -> int:
        return self.shared - self.agree


@lru_cache(maxsize=1)
def _lexicon() -> Any:
    from ..watermark import load_lexicon

    return load_lexicon()


_POS_CACHE: OrderedDict[tuple[int, str], tuple[Any, tuple[Any, ...]]] = OrderedDict()
_POS_CACHE_SIZE = 4096


def text_positions(text: str, lexicon: Any = None) -> tuple[Any, ...]:
    """The watermark slots of a text (the watermark's ``positions``), cached: trace asks for a record's
    slots twice (corroboration and the watermark evidence provider)."""
    from ..watermark.detect import positions

    lex = lexicon if lexicon is not None else _lexicon()
    key = (id(lex), text)
    got = _POS_CACHE.get(key)
    if got is None or got[0] is not lex:
        got = _POS_CACHE[key] = (lex, tuple(positions(text, lex)))
        if len(_POS_CACHE) > _POS_CACHE_SIZE:
            _POS_CACHE.popitem(last=False)
    return got[1]


def slot_agreement(record: str, stored: str, keys: Sequence[Any] = ()) -> SlotAgreement:
    """Compare the variants of the two texts at the watermark slots they share (``keys``: the stored org's)."""
    ps = text_positions(stored)
    marked = bool(ps) and any(all(k.choice(p.context, p.set_id, p.size) == p.index for p in ps) for k in keys)
    mine = {(p.context, p.set_id): p.index for p in ps}
    shared = agree = 0
    for p in text_positions(record):
        v = mine.get((p.context, p.set_id))
        if v is not None:
            shared += 1
            agree += v == p.index
    return SlotAgreement(shared, agree, marked)


@dataclass(frozen=True, slots=True)
class Decision:
    derived: bool
    reason: str
    slots: SlotAgreement | None = None


def decide(alignment: Any, distinct: float | None, prompt_j: float | None, record: str, stored: str,
           align_rule: tuple[float, float], keys: Sequence[Any] = (), ambiguous: bool = False,
           record_prompt: str = "") -> Decision:
    """Whether an aligned candidate is derived, given the information it carries and the corroboration.

    ``ambiguous``: another, different stored answer matches the record about as well (trace's
    ``_ambiguous``): the text is a shape several answers share, so only agreeing watermark slots attribute it.
    The same holds when the record is ``renumbered`` from its own prompt (``record_prompt``).
    """
    aligned = alignment.copied(*align_rule)
    rescue = not aligned and alignment.copied(*RESCUE_RULE)
    if not aligned and not rescue:
        return Decision(False, "not aligned")
    d = math.inf if distinct is None else distinct
    exact = (alignment.gaps <= EXACT_GAPS and alignment.blocks >= EXACT_BLOCKS
             and alignment.omitted <= EXACT_OMITTED)
    if aligned and exact and d >= STRONG_DISTINCT:
        return Decision(True, "strong near-exact copy")
    sa = slot_agreement(record, stored, keys) if keys else SlotAgreement(0, 0, False)
    if sa.marked and sa.disagree >= WM_VETO:
        return Decision(False, "watermark slots disagree", sa)
    wm = sa.marked and sa.agree >= WM_AGREE and sa.disagree == 0
    if ambiguous and not wm:
        return Decision(False, "about as close to other stored answers (a shared template)", sa)
    if not wm and renumbered(record, record_prompt, stored):
        return Decision(False, "numbers differ, taken from the record's own prompt (a shared template)", sa)
    if rescue:  # not the prompt: a regeneration of the same prompt shares much text and the prompt
        return Decision(wm, "edited copy, watermark slots agree" if wm else "not aligned", sa)
    if d >= STRONG_DISTINCT:
        return Decision(True, "strong copy", sa)
    if alignment.omitted > SHORT_OMITTED and not wm:
        return Decision(False, "short match that leaves out most of the stored text (a shared frame)", sa)
    if exact:
        return Decision(True, "short near-exact copy", sa)
    if prompt_j is not None and prompt_j >= PROMPT_AGREE:
        return Decision(True, "short copy, prompt matches", sa)
    if wm:
        return Decision(True, "short copy, watermark slots agree", sa)
    return Decision(False, "short match without corroboration", sa)
