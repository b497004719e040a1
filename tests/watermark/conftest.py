from __future__ import annotations

import pytest

from distillguard.upstreams.corpus import iter_corpus

NOUNS = ["apple", "river", "window", "engine", "garden", "teacher", "market", "signal", "bottle", "planet", "forest", "camera", "ticket", "printer", "battery", "letter", "island", "doctor", "violin", "rocket", "kernel", "ladder", "pencil", "mirror", "harbor", "valley", "tunnel", "castle", "muffin", "jacket", "wallet", "anchor", "bridge", "candle", "desert", "falcon", "glacier", "hammer", "lantern"]


@pytest.fixture(scope="session")
def dense_text() -> str:
    """Prose with many alternation slots in distinct contexts (enough evidence for a decisive test)."""
    return " ".join(f"The {n} is not ready, and you are often told that the {n} does not help." for n in NOUNS)


@pytest.fixture(scope="session")
def real_answers() -> list[str]:
    """Real English answers from the shipped compact corpus (AlpacaEval gpt-4o-mini answers)."""
    out = []
    for r in iter_corpus(None):
        if r.lang == "en" and "alpaca_eval" in r.source:
            out.extend(m["content"] for m in r.messages if m["role"] == "assistant" and len(m["content"]) > 300)
        if len(out) >= 60:
            break
    return out
