import random

import pytest

from distillguard.watermark import Watermarker

WM = Watermarker("test-secret")


def test_same_key_same_output_and_orgs_differ(dense_text):
    a1, a2 = WM.apply(dense_text, "org_a"), WM.apply(dense_text, "org_a")
    b = WM.apply(dense_text, "org_b")
    assert a1 == a2
    assert a1 != dense_text and b != dense_text and a1 != b


def test_unknown_text_is_unchanged():
    for t in ["", "   ", "Bonjour, je suis content de vous voir.", "这是一个测试。", "42\n", "x y z"]:
        assert WM.apply(t, "org_a") == t


PROTECTED = [
    "```python\nx = 1  # do not often change this\nprint('it is not')\n```",
    "Run `do not often` first.",
    "    it is not often the case\n    do not change",
    'He said "do not often do it" yesterday.',
    "“It is not often,” she said.",
    '{"msg": "do not often", "also": "it is not"}',
    "See https://example.com/do-not/often?x=it_is for details.",
    "def f(x):\n    # do not often\n    return x",
    "import os\nIt is not often used and you are often told.",
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May. It is not often.\n#### 72",
]


@pytest.mark.parametrize("text", PROTECTED)
def test_protected_spans_are_unchanged(text):
    out = {WM.apply(text, f"org_{i}") for i in range(16)}
    if text.startswith("Natalia"):
        assert all(o.endswith("#### 72") and "<<48/2=24>>24" in o for o in out)
    elif text.startswith("import"):
        assert out == {text}
    else:
        assert out == {text}


def test_prose_around_code_still_changes_and_code_does_not():
    text = "It is not often needed.\n\n```\ndo not often\n```\n\nYou are often told it is not hard."
    outs = [WM.apply(text, f"org_{i}") for i in range(16)]
    assert all("```\ndo not often\n```" in o for o in outs)
    assert len(set(outs)) > 1


def test_names_numbers_and_case():
    text = "Often, Dr. Often said it 3 times. OFTEN is loud. Often is a name here: Mr. Often."
    for i in range(16):
        out = WM.apply(text, f"org_{i}")
        assert "Dr. Often" in out and "Mr. Often." in out and "OFTEN is" in out and " 3 " in out
        assert out.split(",")[0] in ("Often", "Frequently")


def test_contraction_rules():
    outs = {WM.apply("Leave it as it is. Tell me what it is. It's been fine.", f"o{i}") for i in range(16)}
    assert all("as it is." in o and "what it is." in o and "It's been" in o for o in outs)


def _splits(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 40)))) if len(text) > 1 else []
    return [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)])]


def test_streaming_equals_non_streaming_for_random_splits(real_answers, dense_text):
    rng = random.Random(1)
    texts = real_answers[:40] + [dense_text] + PROTECTED
    for text in texts:
        whole = WM.apply(text, "org_s")
        for _ in range(4):
            s = WM.stream("org_s")
            parts = [s.feed(d) for d in _splits(text, rng)]
            assert "".join(parts) + s.flush() == whole
        s = WM.stream("org_s")  # one character at a time
        assert "".join(s.feed(c) for c in text) + s.flush() == whole


def test_stream_holds_back_little():
    s = WM.stream("org_a")
    assert s.feed("This works well and is fa") == "This works well and"  # "is" may start "is not"
    assert s.feed("st ") == " is fast"
    assert s.feed("  ") == ""
    assert s.flush() == "   "


def _variants(text: str, n: int = 24) -> set[str]:
    return {WM.apply(text, f"org_{i}") for i in range(n)}


def test_only_before_whitelist_decides_where_text_changes():
    assert _variants("We can help with the move.") == {"We can help with the move.", "We can assist with the move."}
    assert _variants("This will help them.") == {"This will help them."}  # no "with": left alone


def test_after_comma_flag():
    out = _variants("Fruits, such as apples, are sweet.")
    assert out == {"Fruits, such as apples, are sweet.", "Fruits, including apples, are sweet."}
    assert _variants("Fruits such as apples are sweet.") == {"Fruits such as apples are sweet."}


def test_every_scored_bit_of_marked_real_text_is_a_hit(real_answers):
    from distillguard.watermark import positions, score

    for a in real_answers[:30]:
        marked = WM.apply(a, "org_h")
        s = score(positions(marked, WM.lexicon), WM.key("org_h"))
        assert s.hits == s.trials
