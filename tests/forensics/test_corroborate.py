import random

import pytest

from distillguard.forensics.adversary import light_edits
from distillguard.forensics.align import align
from distillguard.forensics.corroborate import decide, renumbered, slot_agreement
from distillguard.forensics.wmevidence import WatermarkEvidence
from distillguard.upstreams.corpus import answer_points, iter_corpus
from distillguard.watermark import Watermarker
from distillguard.watermark.detect import positions

WM = Watermarker("corroborate-test")


@pytest.fixture(scope="module")
def prose() -> list[str]:
    """Prose answers whose marked version differs from the original at several watermark slots."""
    out = []
    for rec in iter_corpus(None):
        for ap in answer_points(rec):
            a = ap.answer
            if len(a.split()) > 80 and "```" not in a:
                marked = positions(WM.apply(a, "org_a"), WM.lexicon)
                plain = positions(a, WM.lexicon)
                if len(marked) >= 6 and sum(x.index != y.index for x, y in zip(marked, plain)) >= 3:
                    out.append(a)
        if len(out) >= 3:
            break
    assert out
    return out


def test_a_copy_of_a_marked_answer_agrees_at_every_shared_slot(prose):
    keys = WM.keys("org_a")
    for a in prose:
        stored = WM.apply(a, "org_a")
        copy = light_edits(stored, random.Random(1), rate=0.03)
        sa = slot_agreement(copy, stored, keys)
        assert sa.marked and sa.shared >= 3 and sa.disagree <= 1
        # the same text written without our mark disagrees where the mark changed a variant
        indep = slot_agreement(a, stored, keys)
        assert indep.marked and indep.disagree >= 3


def test_slots_of_an_unmarked_stored_answer_are_not_evidence(prose):
    a = prose[0]
    sa = slot_agreement(a, a, WM.keys("org_a"))  # stored text never marked: agreement means nothing
    assert not sa.marked and sa.shared == sa.agree
    assert not slot_agreement(a, a, ()).marked


def test_decide_needs_corroboration_for_short_matches_and_vetoes_disagreeing_slots(prose):
    rule = (0.12, 0.75)
    short = "The area of a circle with radius 10 is python('import math; math.pi * 10 ** 2')."
    edited = "The area of the circle with radius 10 is python('import math; math.pi * 10 ** 2')."
    al = align(edited, short)
    assert al.copied(*rule) and al.gaps > 0
    assert not decide(al, 8.0, None, edited, short, rule).derived  # short, not exact, nothing else
    assert decide(al, 8.0, 0.95, edited, short, rule).derived  # the prompt matches
    assert decide(align(short, short), 8.0, None, short, short, rule).derived  # near-exact copy
    # the same frame with the stored answer's own words left out (an independent canonical snippet): not exact
    stored = ("You can find information about the SpaceX Crew Dragon mission by utilizing the search tool: "
              "search('SpaceX Crew Dragon mission')")
    frame = "You can find information about the SpaceX Crew Dragon mission: search('SpaceX Crew Dragon mission')"
    al = align(frame, stored)
    assert al.copied(*rule) and al.gaps == 0.0 and al.omitted > 0.1
    assert not decide(al, 8.0, None, frame, stored, rule).derived
    assert decide(al, 8.0, 0.95, frame, stored, rule).derived  # the prompt corroborates it
    # a short record that shares the stored answer's opening and closing but leaves out what lies between:
    # a frame, not a text, and a matching prompt does not make it one
    stored = ("1+1 is equal to 2. This is a basic arithmetic principle that holds true no matter what context "
              "you're using it in. Is there anything else you would like to know?")
    frame = "2+2 is 4. Is there anything else you would like to know?"
    al = align(frame, stored)
    assert al.copied(*rule) and al.omitted > 0.5
    d = decide(al, 6.0, 1.0, frame, stored, rule)
    assert not d.derived and "frame" in d.reason
    assert decide(al, 80.0, None, edited, short, rule).derived  # enough distinctive text on its own
    # an independently written, lightly different version of a marked answer: its slots disagree with the
    # marked variants, so it is rejected even though it is long and aligns as a copy
    a = prose[1]
    stored = WM.apply(a, "org_a")
    indep = light_edits(a, random.Random(4), rate=0.1)
    al = align(indep, stored)
    assert al.copied(*rule) and al.gaps > 0.06
    d = decide(al, 500.0, None, indep, stored, rule, WM.keys("org_a"))
    assert not d.derived and d.slots is not None and d.slots.disagree >= 2
    copy = light_edits(stored, random.Random(4), rate=0.1)  # the same edits on our marked answer: kept
    assert decide(align(copy, stored), 500.0, None, copy, stored, rule, WM.keys("org_a")).derived


def test_watermark_bit_bound_is_never_below_the_bits_found(answers):
    ev = WatermarkEvidence(WM, ["org_a", "org_b"])
    for _, a in answers[:150]:
        for text in (a, WM.apply(a, "org_b")):
            bits = sum(1 if p.size == 2 else 2 for p in positions(text, WM.lexicon))
            assert ev.max_bits(text) >= ev.distinct_bits(text) >= bits


def test_the_distinct_bound_is_tighter_where_phrases_repeat():
    ev = WatermarkEvidence(WM, ["org_a"])
    once = "It is also small. "
    text = once * 12  # one (context, set) slot, repeated: positions keeps it once
    bits = sum(1 if p.size == 2 else 2 for p in positions(text, WM.lexicon))
    assert 0 < bits == ev.distinct_bits(text) < ev.max_bits(text)


def test_a_template_answered_for_another_input_is_not_a_copy_without_the_watermark():
    rule = (0.12, 0.75)
    stored = "The area of the circle with radius 7 is python('import math; math.pi * 7**2') square units."
    prompt = "Calculate the area of a circle with radius 10"
    other = "The area of a circle with radius 10 is python('import math; math.pi * 10**2')."
    al = align(other, stored)
    assert al.copied(*rule)
    assert renumbered(other, prompt, stored)
    d = decide(al, 8.0, 0.95, other, stored, rule, record_prompt=prompt)  # the prompt "matches" (numbers masked)
    assert not d.derived and "template" in d.reason
    # a harvested copy keeps the stored numbers, or its desensitizer replaced them with values its prompt lacks
    copy = "The area of a circle with radius 7 is python('import math; math.pi * 7**2')."
    assert not renumbered(copy, "Calculate the area of a circle with radius 7", stored)
    assert decide(align(copy, stored), 8.0, 0.95, copy, stored, rule, record_prompt=prompt).derived
    faked = "The area of a circle with radius 412 is python('import math; math.pi * 412**2')."
    assert not renumbered(faked, "Calculate the area of a circle with radius 88", stored)
    assert not renumbered(other, "", stored)  # no prompt (plain text records): nothing to compare with
    # numbers the stored answer has too are no evidence either way
    assert not renumbered(stored, "radius 7, answer in 2 decimals", stored)
