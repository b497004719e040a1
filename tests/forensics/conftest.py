"""Real answers from the shipped compact corpus, as stored API outputs of two orgs."""

from __future__ import annotations

import pytest

from distillguard.forensics.index import Output
from distillguard.forensics.normalize import tokens
from distillguard.upstreams.corpus import answer_points, iter_corpus


@pytest.fixture(scope="session")
def answers() -> list[tuple[str, str]]:
    """(prompt, answer) prose pairs with answers of at least 40 words, from the compact corpus.

    Code is left out: independent answers to the same coding task converge on near-identical code
    (GPTeacher holds many), so text similarity alone cannot tell them apart.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for rec in iter_corpus(None):
        if "Codegen" in rec.source:
            continue
        for ap in answer_points(rec):
            key = " ".join(tokens(ap.answer))
            code = "```" in ap.answer or ";\n" in ap.answer or "{\n" in ap.answer
            if len(ap.answer.split()) >= 40 and not code and key not in seen:
                seen.add(key)
                prompt = next(m["content"] for m in reversed(ap.context) if m["role"] == "user")
                out.append((prompt, ap.answer))
        if len(out) >= 400:
            break
    return out


@pytest.fixture(scope="session")
def outputs(answers) -> list[Output]:
    """The first 200 answers as stored outputs, alternating between org_a and org_b."""
    return [Output(f"req_{i:04d}", "org_a" if i % 2 == 0 else "org_b", 1000.0 + i, p, a)
            for i, (p, a) in enumerate(answers[:200])]
