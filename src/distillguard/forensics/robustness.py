"""Robustness check of ``trace``: recall on copies of stored answers dressed in one cheap way each.

    python -m distillguard.forensics.robustness [--split dev] [--seed 7] [--sample 600] [--transforms a,b]

``trace-eval`` measures the adversary of :mod:`.adversary` (desensitization, reformatting, truncation, light
edits). This command asks what else costs a dataset builder nothing and keeps the text usable for training:
changing case or whitespace, framing each answer with boilerplate, reordering its sentences, keeping only its
second half, and Unicode disguises that leave the text readable (Latin lookalikes, invisible characters,
fullwidth forms, sprinkled accents). Each row traces the same sample of stored answers, all dressed one way, as
plain-text records (no prompt, so only the answer's text can match) and prints the share found and attributed to
the right request. A row far below the ``identity`` row names a disguise that hides provenance. Like every
quality measure here: choose on ``--split dev``, report on ``--split test``.

With ``--watermark`` the stored answers carry their org's watermark, as the gateway serves them, and trace runs
with the watermark evidence (as ``distillguard trace`` does): agreeing watermark slots then corroborate copies
that the text alone leaves in doubt (a frame around a copy leaves too much of the record unaligned for the text
alone; see :mod:`.corroborate`).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..choices import comma_list
from .evaluate import EVAL_SECRET, SHARED_DATA, build_case, load_points
from .formats import DatasetRecord
from .index import Output, OutputIndex
from .normalize import tokens
from .trace import trace_records

MIN_WORDS = 40  # copies of shorter answers are left to trace-eval (short matches need corroboration there)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LOOKALIKE = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"})

Transform = Callable[[str, random.Random], str]


def _per_char(text: str, rng: random.Random, share: float, fn: Callable[[str], str]) -> str:
    return "".join(fn(c) if rng.random() < share else c for c in text)


def _shuffle(text: str, rng: random.Random) -> str:
    parts = _SENTENCE_END.split(text)
    rng.shuffle(parts)
    return " ".join(parts)


def _second_half(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    return " ".join(words[len(words) // 2:])


def _zero_width(text: str, rng: random.Random) -> str:
    return "".join(c + ("\u200b" if c.isalpha() and rng.random() < 0.2 else "") for c in text)


def _soft_hyphens(text: str, rng: random.Random) -> str:
    return "".join(c + ("\u00ad" if c.isalpha() and rng.random() < 0.15 else "") for c in text)


def _accents(text: str, rng: random.Random) -> str:
    return "".join(c + (rng.choice("\u0301\u0300\u0308") if c.isalpha() and rng.random() < 0.2 else "") for c in text)


TRANSFORMS: dict[str, Transform] = {
    "identity": lambda t, rng: t,
    "lower": lambda t, rng: t.lower(),
    "upper": lambda t, rng: t.upper(),
    "whitespace": lambda t, rng: " ".join(t.split()),
    "framing": lambda t, rng: f"Sure! Here is a detailed answer to your question.\n\n{t}\n\nLet me know if you need "
                              "anything else!",
    "shuffle": _shuffle,
    "second_half": _second_half,
    "lookalikes": lambda t, rng: _per_char(t, rng, 0.3, lambda c: c.translate(_LOOKALIKE)),
    "zero_width": _zero_width,
    "soft_hyphens": _soft_hyphens,
    "fullwidth": lambda t, rng: _per_char(t, rng, 0.5, lambda c: chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c),
    "accents": _accents,
}


def recall_by_transform(outputs: Sequence[Output], sample: int = 600, seed: int = 7,
                        transforms: Sequence[str] | None = None, watermark: Any = None) -> dict[str, float]:
    """Per transform, the share of sampled stored ``outputs`` (of at least ``MIN_WORDS`` tokens) that trace finds
    and attributes to their own request when dressed that way. With a ``watermark`` (a ``Watermarker``) the
    outputs are stored marked with their org's key and trace uses the watermark evidence."""
    evidence: Callable[[], list[Any]] = list
    if watermark is not None:
        from .wmevidence import WatermarkEvidence

        outputs = [Output(o.id, o.org, o.ts, o.prompt, watermark.apply(o.answer, o.org) if o.org else o.answer)
                   for o in outputs]
        orgs = sorted({o.org for o in outputs if o.org})
        evidence = lambda: [WatermarkEvidence(watermark, orgs)]  # noqa: E731
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    stored = {o.id: o.answer for o in outputs}
    eligible = [o for o in outputs if len(tokens(o.answer)) >= MIN_WORDS]
    picked = random.Random(seed).sample(eligible, min(sample, len(eligible)))
    out: dict[str, float] = {}
    for name in transforms or list(TRANSFORMS):
        fn, rng = TRANSFORMS[name], random.Random(f"{seed}:{name}")
        records = [DatasetRecord(i, (("", fn(o.answer, rng)),), "text") for i, o in enumerate(picked)]
        res = trace_records(records, index, evidence=evidence(), originals=stored.get)
        found = sum(1 for r, o in zip(res["records"], picked) if r["derived"] and r["matched_request"] == o.id)
        out[name] = found / len(picked) if picked else 0.0
    return out


def robustness(split: str = "dev", seed: int = 7, sample: int = 600, corpus_dir: Path | None = None,
               transforms: Sequence[str] | None = None, watermark: bool = False) -> dict[str, float]:
    """``recall_by_transform`` over the stored outputs of ``trace-eval``'s case for this split and seed (with
    ``watermark``: marked with trace-eval's watermark secret)."""
    if corpus_dir is None and SHARED_DATA.is_dir():
        corpus_dir = SHARED_DATA
    outputs, _, _ = build_case(load_points(corpus_dir, split), 20, seed + (0 if split == "dev" else 1000))
    wm = None
    if watermark:
        from ..watermark import Watermarker

        wm = Watermarker(EVAL_SECRET)
    return recall_by_transform(outputs, sample, seed, transforms, wm)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sample", type=int, default=600)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--transforms", default=",".join(TRANSFORMS), help=f"comma-separated, of: {', '.join(TRANSFORMS)}")
    ap.add_argument("--watermark", action="store_true", help="store the answers watermarked, trace with its evidence")
    a = ap.parse_args(argv)
    names = comma_list(ap, a.transforms, TRANSFORMS, "transform")
    res = robustness(a.split, a.seed, a.sample, a.corpus, names, a.watermark)
    print(f"{'transform':<14}{'recall':>8}")
    for name, recall in res.items():
        print(f"{name:<14}{recall:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
