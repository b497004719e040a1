import random

from distillguard.forensics.adversary import (
    desensitize_placeholders,
    light_edits,
    truncate,
)
from distillguard.forensics.align import align

ORIGINAL = (
    "To reset the router, hold the small button on the back for ten seconds until the lights blink. "
    "Then wait two minutes, reconnect with the default password printed on the label, and open the "
    "admin page to set a new network name and a strong password of your own choosing."
)


def test_copy_with_local_edits_is_a_copy():
    rng = random.Random(3)
    edited = light_edits(truncate(desensitize_placeholders(ORIGINAL, rng), rng, 0.8, 0.9), rng, 0.05)
    al = align(edited, ORIGINAL)
    assert al.copied(), al
    assert al.blocks >= 0.8 and al.gaps <= 0.12


def test_independent_answer_sharing_runs_is_not_a_copy():
    # shares long runs (the first sentence) but has a sentence of its own: an independent regeneration
    other = (
        "To reset the router, hold the small button on the back for ten seconds until the lights blink. "
        "If that does not work, call your provider's support line and ask them to push a factory image, "
        "which usually takes about an hour."
    )
    al = align(other, ORIGINAL)
    assert not al.copied(), al
    assert al.gaps > 0.3


def test_same_template_with_different_words_is_not_a_copy():
    a = "public class Odd { public static void main(String[] args) { for (int i = 1; i <= 10; i++) " \
        "{ if (i % 2 != 0) { System.out.println(i); } } } }"
    b = "public class First { public static void main(String[] args) { int total = 0; for (int k = 0; k < n; k++) " \
        "{ total += values[k]; } System.out.println(total / n); } }"
    assert not align(b, a).copied()


def test_prompt_shingles_are_not_novel_and_empty_text_is_no_copy():
    prompt = "What is the speed of light in miles per hour?"
    answer = "The speed of light in miles per hour is about 670 million."
    with_prompt, without = align(answer, answer, prompt), align(answer, answer)
    assert with_prompt.novel < without.novel
    assert not align("", ORIGINAL).copied() and not align(ORIGINAL, "").copied()


def test_a_copy_with_reordered_sentences_is_a_copy_and_a_shuffled_other_answer_is_not():
    sentences = ORIGINAL.split(". ")
    reordered = ". ".join([sentences[1], sentences[0]])
    al = align(reordered, ORIGINAL)
    assert al.copied(), al  # in order alone, only one of the two sentences aligned
    assert al.gaps == 0.0 and al.blocks == 1.0
    # moved passages must be long: scattered common phrases of an independent answer do not add up to a copy
    other = ("Wait two minutes before you open the page. The lights blink on the back when the router is ready, "
             "and your provider may ask for the serial number printed on the label of the box it came in.")
    assert not align(other, ORIGINAL).copied()
    # a stored passage is used once: the same sentence pasted twice is not aligned twice
    twice = sentences[0] + ". " + sentences[0] + ". " + sentences[0]
    assert align(twice, ORIGINAL).gaps > 0.5


def test_omitted_counts_stored_text_left_out_inside_the_copied_stretch_not_a_cut_tail():
    rng = random.Random(5)
    cut = truncate(ORIGINAL, rng, 0.5, 0.6)  # the tail is cut: outside the copied stretch
    assert align(cut, ORIGINAL).omitted == 0.0
    # the record keeps the frame but skips a phrase of the stored answer in the middle
    skipped = ORIGINAL.replace("reconnect with the default password printed on the label, and ", "")
    al = align(skipped, ORIGINAL)
    assert al.gaps == 0.0  # every token of the record is in the stored answer ...
    assert 0.15 < al.omitted < 0.3  # ... but a fifth of the stretch it spans is not in the record
    assert align(ORIGINAL, ORIGINAL).omitted == 0.0 and align("", ORIGINAL).omitted == 1.0
