import pytest

from distillguard.watermark.lexicon import load_lexicon, parse_lexicon


def test_shipped_lexicon_loads():
    lex = load_lexicon()
    assert len(lex.sets) > 50
    assert lex.phrases[("do", "not")][0] == lex.phrases[("don't",)][0]
    assert all(len(s.variants) in (2, 4) for s in lex.sets)


@pytest.mark.parametrize("text", ["a | b | c", "a | b\nb | c", "a b | c\na | d", "a b c | d"])
def test_bad_lexicons_are_refused(text):
    with pytest.raises(ValueError):
        parse_lexicon(text)


def test_flags_are_parsed():
    lex = parse_lexicon("it is | it's @W Y=been X=as,what\nadditionally | moreover | furthermore | in addition @SC")
    a, b = lex.sets
    assert a.word_next and a.not_before == {"been"} and a.not_after == {"as", "what"} and a.bits == 1
    assert b.start and b.comma and b.bits == 2


def test_only_after_only_before_and_after_comma_flags_are_parsed():
    lex = parse_lexicon("help | assist @X=the B=with\nstart | begin @A=to,can\nsuch as | including @PW")
    a, b, c = lex.sets
    assert a.only_before == {"with"} and a.not_after == {"the"} and not a.only_after
    assert b.only_after == {"to", "can"} and not b.only_before
    assert c.after_comma and c.word_next and not c.start


def test_shipped_lexicon_has_no_conflicting_flags():
    for s in load_lexicon().sets:
        assert not (s.only_before & s.not_before) and not (s.only_after & s.not_after)
