"""Trace still finds copies dressed in free disguises (``forensics.robustness``)."""

from distillguard.forensics import robustness
from distillguard.forensics.robustness import TRANSFORMS, recall_by_transform


def test_transforms_change_the_text_as_named():
    import random

    rng = random.Random(1)
    text = "First sentence here. Second one follows! And a third? Yes."
    assert TRANSFORMS["identity"](text, rng) == text
    assert sorted(TRANSFORMS["shuffle"](text, rng).split()) == sorted(text.split())
    assert TRANSFORMS["second_half"](text, rng) == "follows! And a third? Yes."  # the last 5 of 10 words
    for name in ("lookalikes", "zero_width", "soft_hyphens", "fullwidth", "accents"):
        dressed = TRANSFORMS[name](text * 3, rng)
        assert dressed != text * 3 and not dressed.isascii(), name


def test_disguised_copies_are_still_traced(outputs):
    res = recall_by_transform(outputs, sample=80, seed=3,
                              transforms=["identity", "shuffle", "lookalikes", "zero_width", "fullwidth", "accents"])
    assert res["identity"] >= 0.97
    for name in ("shuffle", "lookalikes", "zero_width", "fullwidth", "accents"):
        assert res[name] >= 0.9, (name, res)


def test_the_command_rejects_unknown_transforms(capsys):
    import pytest

    with pytest.raises(SystemExit):
        robustness.main(["--transforms", "identity,nope"])
    assert "unknown transform" in capsys.readouterr().err


def test_the_watermark_corroborates_framed_copies_the_text_leaves_in_doubt(outputs):
    from distillguard.watermark import Watermarker

    text_only = recall_by_transform(outputs, sample=80, seed=3, transforms=["identity", "framing"])
    marked = recall_by_transform(outputs, sample=80, seed=3, transforms=["identity", "framing"],
                                 watermark=Watermarker("robustness-test"))
    assert marked["identity"] >= 0.97
    assert marked["framing"] >= text_only["framing"] + 0.05, (text_only, marked)
