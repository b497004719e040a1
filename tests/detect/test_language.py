"""Telling a text's language, and translations read as grounded in their prompts."""

from __future__ import annotations

import dataclasses
import random

from distillguard.detect import features as F
from distillguard.detect.engine import Detector
from distillguard.detect.evasion import FOREIGN, REWRITES
from distillguard.detect.language import language, renders_prompt, rendering_key

from . import traffic as T
from .test_scripts import cyrillize, hanzify

EN = ("The committee reviewed the proposal for the new library and decided that the project should go ahead in the "
      "spring, provided that the city can find the money for the building and the staff it will need.")
FR = ("Le comité a examiné la proposition pour la nouvelle bibliothèque et a décidé que le projet devrait avancer au "
      "printemps, à condition que la ville trouve les fonds pour le bâtiment et le personnel dont il aura besoin.")
ES = ("El comité revisó la propuesta para la nueva biblioteca y decidió que el proyecto debe seguir adelante en la "
      "primavera, siempre que la ciudad encuentre el dinero para el edificio y el personal que necesitará.")
DE = ("Der Ausschuss hat den Vorschlag für die neue Bibliothek geprüft und entschieden, dass das Projekt im Frühjahr "
      "beginnen soll, wenn die Stadt das Geld für das Gebäude und die Mitarbeiter findet, die es braucht.")
CODE = ("def total(items):\n    result = 0\n    for item in items:\n        if item.price > 0:\n"
        "            result += item.price * item.count\n    return result\n\nprint(total(cart.items))\n")


def test_languages_are_told_by_script_and_function_words():
    assert [language(t) for t in (EN, FR, ES, DE)] == ["en", "fr", "es", "de"]
    assert language(hanzify(EN)) == "han" and language(cyrillize(EN)) == "cyrillic"
    assert language(CODE) is None  # code is no language
    assert language("The car sped up.") is None  # too short to tell
    assert language("Leonardo da Vinci, Michelangelo, Raffaello, Donatello: painters and sculptors") is None


def test_an_answer_in_another_language_bounded_by_its_prompt_renders_it():
    assert renders_prompt(EN, "Traduis en anglais :\n\n" + FR)
    assert renders_prompt(FR, "Translate into French:\n\n" + EN)
    assert renders_prompt(EN, "Translate into English:\n\n" + hanzify(EN))
    assert not renders_prompt(EN, "Summarise:\n\n" + EN)  # the same language: word pairs decide
    assert not renders_prompt(EN * 6, "请写一篇关于图书馆的文章。")  # far longer than the prompt: new text
    assert not renders_prompt(EN, "Translate into English:\n\n" + hanzify(EN * 4))  # most of the prompt left out
    assert not renders_prompt(CODE, "Translate into English:\n\n" + hanzify(EN))
    key = rendering_key(EN, "Translate into English:\n\n" + hanzify(EN))
    assert key and key == rendering_key(EN, "请翻译成英文。\n\n" + hanzify(EN))  # the text rendered, not the wording
    assert rendering_key(EN, "Write about a new library in three sentences.") == 0


def _translator(org: str, n: int, rng: random.Random) -> list[dict]:
    """A translation product: the customer's (Han-script) texts in, their English rendering out, single-shot."""
    texts = [a for m in T.pools()["alpaca_eval"] if len(a := T._answer(m)) > 400]
    out = []
    for i in range(n):
        text = rng.choice(texts)
        msgs = [{"role": "system", "content": "You translate documents for a law firm."},
                {"role": "user", "content": "Translate into English:\n\n" + hanzify(text)}]
        out.append(T.record(org, i, T.T0 + 20.0 * i, msgs, text, temperature=0.2))
    return out


def test_a_translation_product_is_grounded_and_not_flagged(monkeypatch):
    rng = random.Random(4)
    recs = [r for k in range(3) for r in _translator(f"tr{k}", 200, rng)]
    rep = Detector(rings=False).run(recs)
    assert all(a.features["answer_grounding"] > 0.8 for a in rep.accounts)  # (code answers: no language)
    assert not any(a.flagged for a in rep.accounts), [(a.org, a.score) for a in rep.accounts]
    monkeypatch.setattr(F, "rendering_key", lambda answer, prompt: 0)  # read by word pairs alone
    before = Detector(rings=False).run(recs)
    assert all(a.features["answer_grounding"] < 0.2 for a in before.accounts)
    assert all(a.score > b.score for a, b in zip(sorted(before.accounts, key=lambda a: a.org),
                                                 sorted(rep.accounts, key=lambda a: a.org)))


def _harvester(org: str, n: int, rng: random.Random, block: str) -> list[dict]:
    """Single-shot instructions with whole answers, ``block`` (another language) pasted before every prompt."""
    pool = [m for m in T.pools()["gpteacher"] if len(T._answer(m)) > 600 and language(T._answer(m)) == "en"]
    out = []
    for i in range(n):
        m = rng.choice(pool)
        msgs = [{"role": "user", "content": f"{block}\n\n{T._first_user(m)}"}]
        out.append(T.record(org, i, T.T0 + 3.0 * i, msgs, T._answer(m), temperature=0.7))
    return out


def test_a_fixed_block_of_another_language_does_not_pass_answers_off_as_translations(monkeypatch):
    rng = random.Random(6)
    assert len(FOREIGN.encode()) < 1000  # small enough for most whole answers to pass the size test
    padded = _harvester("h", 200, rng, FOREIGN)
    keys = [f.rendered for f in map(F.extract, padded) if f.rendered]
    assert len(keys) > 20 and len(set(keys)) == 1  # rendered, in size and language: always the same text
    acc = Detector(rings=False).run(padded).accounts[0]
    assert acc.features["answer_grounding"] < 0.2  # only the first two count
    monkeypatch.setattr("distillguard.detect.account.RENDERED_REPEATS", 10**9)  # every one counted
    fooled = Detector(rings=False).run(padded).accounts[0]
    assert fooled.features["answer_grounding"] > 0.9 and fooled.score < acc.score - 0.5
    req = {"messages": [{"role": "user", "content": "Q?"}]}
    REWRITES["foreign"](req)
    assert req["messages"][0]["content"] == f"{FOREIGN}\n\nQ?"


def test_remembered_rendered_texts_are_bounded(monkeypatch):
    from distillguard.detect.account import AccountState

    monkeypatch.setattr("distillguard.detect.account.MAX_RENDERED", 2)
    st = AccountState("a")
    base = F.extract(T.record("a", 0, T.T0, [{"role": "user", "content": "q"}], "a"))
    for i, key in enumerate((11, 12, 13, 11, 11, 11)):
        st.add(dataclasses.replace(base, id=f"r{i}", novelty=1.0, rendered=key))
    assert st.rendered == {11: 4, 12: 1}  # 13 came when full: counted as grounded, not remembered
    assert st.novel == 2.0  # the third and fourth repeat of 11 are not grounded

