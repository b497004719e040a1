from distillguard.forensics.normalize import caseless, fold, name_words, recase, shingles, tokens


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


def test_free_unicode_disguises_fold_to_the_original_tokens():
    original = "The mitochondria is the powerhouse of the cell, and it makes most of the energy."
    lookalikes = original.translate(str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "T": "Т"}))
    invisible = original.replace(" ", " \u200b").replace("power", "pow\u00ader")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in original)
    accents = original.replace("o", "o\u0301").replace("e", "e\u0308")
    for disguised in (lookalikes, invisible, fullwidth, accents):
        assert disguised != original
        assert tokens(disguised) == tokens(original), disguised
    assert fold(original) is original  # ASCII text is not touched


def test_folding_keeps_other_scripts_apart_and_matching_themselves():
    ru, ru2 = "Столица Франции - Париж, самый большой город страны.", "Москва - столица России и её крупнейший город."
    assert tokens(ru) == tokens(ru) and tokens(ru) != tokens(ru2)
    assert len(set(tokens(ru)) & set(tokens(ru2))) <= 2  # only the shared words ("столица", "город")
    assert tokens("北京是中国的首都") == ["北", "京", "是", "中", "国", "的", "首", "都"]


def test_all_capitals_read_like_lower_case():
    text = "Please ask Maria Lopez, our manager, before you change the settings."
    assert tokens(text.upper()) == tokens(text.lower())
    assert "§" not in tokens(text.upper())  # no word of an all-capitals text is taken for a name


def test_a_caseless_copy_recased_with_its_sources_names_normalises_like_the_source():
    source = ("The Federal Reserve's policy has had an impact on inequality in the United States. "
              "Analysts at Goldman Sachs note that the Fed buys bonds.")
    names = name_words(source)
    assert names == {"federal", "reserve's", "united", "states", "goldman", "sachs", "fed"}
    # a word the source also has in lower case is left alone: a lower-cased 'gcd' may be either one
    assert name_words("The GCD of two numbers: def gcd(a, b) by Euclid.") == {"euclid"}
    lower, upper = source.lower(), source.upper()
    assert caseless(lower) and caseless(upper) and not caseless(source)
    assert tokens(lower) != tokens(source)  # lower case alone loses the name masks
    assert tokens(recase(lower, names)) == tokens(source)
    assert tokens(recase(upper, names)) == tokens(source)
    assert recase(source, names) == source and recase(lower, frozenset()) == lower  # text with case: unchanged
    # an independent lower-case text gains only the names it shares with the source
    other = "rates in the united kingdom rose as the bank of england sold bonds."
    assert "§" in tokens(recase(other, names)) and "england" in tokens(recase(other, names))
