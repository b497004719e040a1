"""What an adversary does to harvested outputs before training on them (for the evaluation).

Desensitization (Presidio-style placeholders or fake values, and Presidio itself when it is
installed with a spaCy model), reformatting into another training format, markdown stripping,
truncation and light word edits. Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
import re
from typing import Any

FORMATS = ("alpaca", "sharegpt", "openai", "text", "prompt_completion")
_FAKE_NAMES = ["Michael", "Sarah", "Chen Wei", "Priya", "Olaf", "Amara", "Lucas", "Hana", "Diego", "Fatima"]
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\bhttps?://\S+")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ()-]{6,}\d(?!\w)")
_NUM = re.compile(r"\b\d+(?:\.\d+)?\b")
_CAP = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})?")
_MD = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*]\s+|^\s*>\s?)", re.MULTILINE)


def desensitize_placeholders(text: str, rng: random.Random) -> str:
    """Presidio's default operator: entity spans replaced by ``<ENTITY_TYPE>`` (or [NAME], ***)."""
    style = rng.choice(["presidio", "brackets", "stars"])
    ph = {"presidio": ("<EMAIL_ADDRESS>", "<URL>", "<PHONE_NUMBER>", "<PERSON>", "<NUMBER>"),
          "brackets": ("[EMAIL]", "[URL]", "[PHONE]", "[NAME]", "[NUM]"),
          "stars": ("***", "***", "***", "***", "***")}[style]
    text = _EMAIL.sub(ph[0], text)
    text = _URL.sub(ph[1], text)
    text = _PHONE.sub(ph[2], text)
    text = _CAP.sub(ph[3], text)
    return _NUM.sub(ph[4], text) if rng.random() < 0.5 else text


def desensitize_fake(text: str, rng: random.Random) -> str:
    """Faker-style: entity spans replaced by plausible fake values."""
    text = _EMAIL.sub(lambda m: f"user{rng.randint(1, 999)}@example.org", text)
    text = _URL.sub("https://example.com/page", text)
    text = _PHONE.sub(lambda m: f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}", text)
    text = _CAP.sub(lambda m: rng.choice(_FAKE_NAMES), text)
    return _NUM.sub(lambda m: str(rng.randint(0, 999)), text) if rng.random() < 0.5 else text


_PRESIDIO: Any = None


def presidio_available() -> bool:
    """Presidio with a loadable spaCy model (nothing is downloaded)."""
    global _PRESIDIO
    if _PRESIDIO is None:
        try:
            from presidio_analyzer import AnalyzerEngine
            from presidio_anonymizer import AnonymizerEngine

            _PRESIDIO = (AnalyzerEngine(), AnonymizerEngine())
        except Exception:  # noqa: BLE001 - not installed, or no spaCy model on this machine
            _PRESIDIO = False
    return bool(_PRESIDIO)


def desensitize_presidio(text: str) -> str:
    analyzer, anonymizer = _PRESIDIO
    found = analyzer.analyze(text=text, language="en")
    return anonymizer.anonymize(text=text, analyzer_results=found).text


def strip_markdown(text: str) -> str:
    return _MD.sub("", text)


def truncate(text: str, rng: random.Random, low: float = 0.5, high: float = 0.9) -> str:
    words = text.split(" ")
    keep = max(1, int(len(words) * rng.uniform(low, high)))
    return " ".join(words[:keep])


def light_edits(text: str, rng: random.Random, rate: float = 0.05) -> str:
    """Delete, duplicate or swap about ``rate`` of the words."""
    words = text.split(" ")
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        x = rng.random()
        if x < rate / 3:
            i += 1
            continue  # deletion
        if x < 2 * rate / 3 and i + 1 < len(words):
            out += [words[i + 1], w]  # swap
            i += 2
            continue
        if x < rate:
            out += [w, rng.choice(["really", "also", "very", "just", "indeed"])]  # insertion
        else:
            out.append(w)
        i += 1
    return " ".join(out)


def as_format(prompt: str, answer: str, fmt: str) -> dict[str, Any]:
    """One training record in the given format."""
    if fmt == "alpaca":
        return {"instruction": prompt, "input": "", "output": answer}
    if fmt == "sharegpt":
        return {"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}
    if fmt == "openai":
        return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    if fmt == "prompt_completion":
        return {"prompt": prompt, "completion": answer}
    return {"text": answer}


def transform(prompt: str, answer: str, rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """An adversarially transformed training record, and the names of the transformations applied."""
    applied: list[str] = []
    r = rng.random()
    if r < 0.3:
        prompt, answer = desensitize_placeholders(prompt, rng), desensitize_placeholders(answer, rng)
        applied.append("placeholders")
    elif r < 0.6:
        prompt, answer = desensitize_fake(prompt, rng), desensitize_fake(answer, rng)
        applied.append("fake_values")
    elif r < 0.7 and presidio_available():
        prompt, answer = desensitize_presidio(prompt), desensitize_presidio(answer)
        applied.append("presidio")
    if rng.random() < 0.5:
        answer = strip_markdown(answer)
        applied.append("markdown")
    if rng.random() < 0.3:
        answer = truncate(answer, rng)
        applied.append("truncate")
    if rng.random() < 0.5:
        answer = light_edits(answer, rng)
        applied.append("edits")
    fmt = rng.choice(FORMATS)
    applied.append(fmt)
    return as_format(prompt, answer, fmt), applied
