from distillguard.detect.text import (
    MARKER_BIT,
    PromptView,
    builds_on_answer,
    marker_bits,
    mask,
    scaffold_keys,
)


def bits_of(text: str) -> set[str]:
    b = marker_bits(text.lower())
    return {name for name, bit in MARKER_BIT.items() if b & bit}


def test_mask_replaces_numbers_names_quotes_and_code():
    s = mask('Summarise the article "Rust in 2024" by Jane Doe, 1200 words at https://x.io/a\n```py\nx=1\n```')
    assert "<q>" in s and "<n>" in s and "<e>" in s and "<url>" in s and "<code>" in s
    assert "2024" not in s and "jane" not in s and "x=1" not in s


def test_templated_prompts_share_a_scaffold_and_different_prompts_do_not():
    a = mask("Generate 5 examples of questions about Photosynthesis for a biology quiz, in JSON format please.")
    b = mask("Generate 12 examples of questions about Roman History for a biology quiz, in JSON format please.")
    c = mask("my cat keeps scratching the sofa at night, what can I do to make her stop doing that?")
    assert scaffold_keys(a) == scaffold_keys(b)
    assert scaffold_keys(a)[0] != scaffold_keys(c)[0]


def test_instruction_markers():
    assert {"generate_n", "output_format", "imperative"} <= bits_of("Generate 20 diverse task instructions as JSON.")
    assert "step_by_step" in bits_of("Solve this and explain step by step.")
    assert "persona" in bits_of("You are an experienced lawyer. Review this clause.")
    assert "length_demand" in bits_of("Write at least 500 words on the topic.")
    assert "answer_format" in bits_of("Question: what is 2+2?\nAnswer with only the number.")
    assert "rewrite_variant" in bits_of("Rewrite this paragraph for a 5-year-old.")
    assert bits_of("hey, my kettle is broken and i'm sad") == set()


def test_prompt_view_of_chat_and_legacy_bodies():
    v = PromptView({"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "hello!"}, {"role": "user", "content": "more"}]})
    assert (v.prompt, v.system, v.prev_answer, v.turns) == ("more", "be nice", "hello!", 2)
    v = PromptView({"prompt": ["once upon a time"]})
    assert (v.prompt, v.turns) == ("once upon a time", 1)
    assert PromptView(None).prompt == "" and PromptView({"messages": "junk"}).turns == 0


def test_follow_up_builds_on_answer():
    answer = "Use a binary heap: push is O(log n) and pop returns the smallest element."
    assert builds_on_answer("why is the heap push logarithmic?", answer)
    assert not builds_on_answer("write a sonnet about the ocean in iambic pentameter, fourteen lines long, "
                                "with a volta at line nine and a rhyming couplet to close " * 3, answer)
    assert not builds_on_answer("anything", "")


def test_a_follow_up_counts_only_when_the_new_answer_continues_the_previous_one():
    prev = "Use a binary heap: push is O(log n) and pop returns the smallest element of the heap."
    elaboration = "A heap push appends the element and sifts it up; each swap halves the distance to the root, so push " \
                  "takes O(log n) steps, and pop moves the last element to the root and sifts it down."
    unrelated = "The French Revolution began in 1789 with the storming of the Bastille and ended the monarchy."
    assert builds_on_answer("also, why is that?", prev, elaboration)
    assert not builds_on_answer("also, why is that?", prev, unrelated)  # "Also, ..." before a new question
    assert builds_on_answer("also, why is that?", prev)  # no answer at hand: the prompt alone decides
    assert builds_on_answer("also, why is that?", prev, "42")  # an answer without content words is not held against it


def test_continue_builds_on_a_cut_answer_as_in_chinese():
    prev = ("Photosynthesis is the process by which green plants use sunlight to turn carbon dioxide and water into "
            "glucose and oxygen. It takes place mainly in the chloroplasts of leaf cells, where chlorophyll absorbs")
    rest = ("light energy. The light reactions in the chloroplasts split water and release oxygen, and the Calvin cycle "
            "then fixes carbon dioxide into glucose, which the plants use for energy and growth.")
    unrelated = "The French Revolution began in 1789 with the storming of the Bastille and ended the monarchy."
    for prompt in ("continue", "please go on", "keep going"):
        assert builds_on_answer(prompt, prev, rest), prompt
        assert not builds_on_answer(prompt, prev, unrelated), prompt  # a new text after "continue" is not the rest
