from distillguard.forensics.normalize import shingles, tokens


def test_presidio_placeholders_and_fake_values_normalise_like_the_original():
    original = "Please contact Maria Lopez at maria@corp.com or +1 (415) 555-0199 before 5 May."
    presidio = "Please contact <PERSON> at <EMAIL_ADDRESS> or <PHONE_NUMBER> before <DATE_TIME>."
    brackets = "Please contact [NAME] at [EMAIL] or *** before [DATE]."
    fake = "Please contact John Doe at j.doe@example.org or +44 20 7946 0958 before 12 June."
    expected = tokens(original)
    assert tokens(presidio) == expected
    assert tokens(brackets) == expected
    assert tokens(fake) == expected


def test_markdown_and_case_are_ignored():
    md = "## Steps\n**Open** the `file`\n- then *save* it"
    assert tokens(md) == tokens("Steps: open the file, then save it") == ["steps", "open", "the", "file", "then",
                                                                           "save", "it"]


def test_different_text_differs():
    assert tokens("the cat sat on the mat") != tokens("a dog ran in the park")


def test_cjk_is_tokenised_per_character():
    assert tokens("你好世界") == ["你", "好", "世", "界"]


def test_shingles():
    assert shingles(["a", "b", "c", "d"], 3) == {"a b c", "b c d"}
    assert shingles(["a"], 3) == {"a"}
    assert shingles([], 3) == set()
