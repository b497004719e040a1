"""Matching conversations to recorded answers: exact, near, multi-turn, deterministic, cached."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from distillguard.upstreams import replay_index
from distillguard.upstreams.replay_index import Query, ReplayIndex, normalise

from .conftest import first_answer


def unique_prompts(records, source_part: str, limit: int = 5, min_words: int = 12):
    """Single-answer records of one source whose first user turn occurs only once in the corpus."""
    counts = Counter(normalise(r.messages[0]["content"]) for r in records)
    out = []
    for r in records:
        ctx, _ = first_answer(r)
        if (source_part in r.source and len(ctx) == 1 and counts[normalise(ctx[0]["content"])] == 1
                and len(ctx[0]["content"].split()) >= min_words):
            out.append(r)
        if len(out) == limit:
            break
    assert out, f"no usable records from {source_part}"
    return out


@pytest.fixture
def index(replay) -> ReplayIndex:
    return replay.index


@pytest.mark.parametrize("source", ["alpaca_eval", "grade-school-math", "human-eval", "GPTeacher/Codegen",
                                    "Toolformer", "stanford_alpaca"])
def test_exact_prompt_returns_recorded_answer(index, compact_records, source):
    for rec in unique_prompts(compact_records, source):
        ctx, answer = first_answer(rec)
        m = index.search(Query.from_messages(ctx))[0]
        assert m.how == "exact"
        assert index.answer(m.unit) == answer
        assert index.record_id(m.unit) == rec.id


def test_exact_match_is_on_a_normalised_form_and_ignores_system(index, compact_records):
    rec = unique_prompts(compact_records, "alpaca_eval")[0]
    ctx, answer = first_answer(rec)
    messy = "  " + ctx[0]["content"].upper().replace(" ", "   \n") + " "
    q = Query.from_messages([{"role": "system", "content": "You are a helpful assistant."},
                             {"role": "user", "content": messy}])
    m = index.search(q)[0]
    assert (m.how, index.answer(m.unit)) == ("exact", answer)


@pytest.mark.parametrize("edit", ["typo", "drop", "append"])
def test_lightly_edited_prompt_gets_that_records_answer(index, compact_records, edit):
    for rec in unique_prompts(compact_records, "alpaca_eval", limit=5, min_words=15):
        ctx, answer = first_answer(rec)
        words = ctx[0]["content"].split()
        if edit == "typo":
            words[len(words) // 2] = words[len(words) // 2] + "x"
        elif edit == "drop":
            del words[1]
        else:
            words.append("Please answer briefly.")
        m = index.search(Query.from_prompt(" ".join(words)))[0]
        assert m.how == "nearest" and 0.5 < m.score < 1.0
        assert index.answer(m.unit) == answer


def test_multi_turn_conversation_answers_the_last_turn(index, compact_records):
    recs = [r for r in compact_records if "mt_bench" in r.source]
    assert recs
    for rec in recs[:10]:
        u1, a1, u2, a2 = (m["content"] for m in rec.messages[:4])
        convo = [{"role": "user", "content": u1}, {"role": "assistant", "content": a1},
                 {"role": "user", "content": u2}]
        m = index.search(Query.from_messages(convo))[0]
        assert (m.how, index.answer(m.unit)) == ("exact", a2)
        # the assistant turn came back changed (e.g. watermarked): the user turns still match exactly
        convo[1] = {"role": "assistant", "content": a1.replace(" ", "  ").replace("the", "that")}
        m = index.search(Query.from_messages(convo))[0]
        assert (m.how, index.answer(m.unit)) == ("exact", a2)
        # and the first turn alone gets the first answer
        assert index.answer(index.search(Query.from_messages(convo[:1]))[0].unit) == a1


def test_search_is_deterministic_and_ranked(index):
    q = Query.from_prompt("Write a Python function that reverses a string and explain its complexity.")
    a = index.search(q, 5)
    index._lru.clear()
    b = index.search(q, 5)
    assert a == b and len(a) == 5
    assert [m.score for m in a] == sorted((m.score for m in a), reverse=True)
    assert len({m.unit for m in a}) == 5


def test_query_sharing_no_word_still_gets_a_deterministic_answer(index):
    q = Query.from_prompt("zzqxv qqwzx vvqxz")
    a = index.search(q, 3)
    assert [m.how for m in a] == ["fallback"] * 3
    assert index.search(Query.from_prompt("zzqxv qqwzx vvqxz"), 3) == a
    assert index.search(Query.from_prompt("xqzzv wwqzx zvqxx"), 3) != a


def test_exact_scores_agree_with_full_scan(index, compact_records):
    """Candidate generation + rescoring finds the same best score as scanning every posting."""
    for rec in unique_prompts(compact_records, "GPTeacher/Codegen", limit=5):
        ctx, _ = first_answer(rec)
        q = Query.from_prompt(ctx[0]["content"] + " using no libraries")
        best = index.search(q)[0]
        assert best.score == pytest.approx(float(index.scores(q).max()), abs=1e-4)


# ---- a tiny corpus in the MANIFEST format -------------------------------------------------------------
def _write(path: Path, records: list[dict], gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if gz else data)


def _rec(i: str, *turns: tuple[str, str], meta: dict | None = None) -> dict:
    return {"id": i, "source": "test/repo/file", "kind": "benign", "lang": "en",
            "messages": [{"role": r, "content": c} for r, c in turns], **({"meta": meta} if meta else {})}


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _write(root / "benign" / "chats.jsonl", [
        _rec("c1", ("user", "How do I boil an egg?"), ("assistant", "Put it in boiling water for nine minutes.")),
        _rec("c2", ("user", "Name a red fruit."), ("assistant", "A strawberry."),
             ("user", "And a yellow one?"), ("assistant", "A banana.")),
        _rec("c3", ("user", "Only a question, never answered")),
    ])
    _write(root / "distill" / "more.jsonl.gz", [
        _rec("g1", ("user", "Translate 'cat' into French."), ("assistant", "Chat.")),
        _rec("g2", ("user", "A prompt-only seed"), ("assistant", "should be skipped"), meta={"prompts_only": True}),
    ], gz=True)
    (root / "distill" / "generation_prompts.jsonl").write_text(json.dumps({"id": "p", "source": "s", "text": "x"}) + "\n")
    (root / "MANIFEST.md").write_text("# test\n")
    return root


def test_full_corpus_dir_loading(tiny_corpus, tmp_path):
    idx = ReplayIndex.load_or_build(tiny_corpus, tmp_path / "cache")
    assert idx.meta["records"] == 3 and idx.size == 4  # c1, c2 (two answers), g1
    assert {idx.record_id(u) for u in range(idx.size)} == {"c1", "c2", "g1"}
    ans = lambda msgs: idx.answer(idx.search(Query.from_messages(msgs))[0].unit)  # noqa: E731
    assert ans([{"role": "user", "content": "how do i boil an EGG?"}]) == "Put it in boiling water for nine minutes."
    assert ans([{"role": "user", "content": "Name a red fruit."}, {"role": "assistant", "content": "A strawberry."},
                {"role": "user", "content": "And a yellow one?"}]) == "A banana."
    assert ans([{"role": "user", "content": "translate cat to french please"}]) == "Chat."


def test_same_follow_up_is_told_apart_by_the_earlier_turns(tmp_path):
    root = tmp_path / "data"
    _write(root / "chats.jsonl", [
        _rec("f", ("user", "Name a red fruit."), ("assistant", "A strawberry."),
             ("user", "And a yellow one?"), ("assistant", "A banana.")),
        _rec("v", ("user", "Name a red vegetable."), ("assistant", "A tomato."),
             ("user", "And a yellow one?"), ("assistant", "A yellow pepper.")),
    ])
    idx = ReplayIndex.load_or_build(root, tmp_path / "cache")
    for first, expected in (("name one red vegetable", "A yellow pepper."), ("a red fruit, any", "A banana.")):
        q = Query.from_messages([{"role": "user", "content": first}, {"role": "assistant", "content": "Hmm."},
                                 {"role": "user", "content": "And a yellow one?"}])
        m = idx.search(q)[0]
        assert (m.how, idx.answer(m.unit)) == ("nearest", expected)


def test_index_is_built_once_and_reused_from_disk(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(replay_index, "_built", {})  # forget indexes built by earlier tests
    cache = tmp_path / "cache"
    before = ReplayIndex.builds
    first = ReplayIndex.load_or_build(tiny_corpus, cache)
    assert ReplayIndex.builds == before + 1
    assert first.path is not None and (first.path / "meta.json").is_file()
    mtime = (first.path / "meta.json").stat().st_mtime_ns
    second = ReplayIndex.load_or_build(tiny_corpus, cache)
    assert ReplayIndex.builds == before + 1  # loaded, not rebuilt
    assert (second.path / "meta.json").stat().st_mtime_ns == mtime
    assert [second.answer(u) for u in range(second.size)] == [first.answer(u) for u in range(first.size)]
    q = Query.from_prompt("boil eggs how")
    assert second.search(q, 2) == first.search(q, 2)
    # another cache dir in the same process: no rebuild, but the index is saved there too
    elsewhere = ReplayIndex.load_or_build(tiny_corpus, tmp_path / "other-cache")
    assert ReplayIndex.builds == before + 1
    assert (tmp_path / "other-cache" / first.path.name / "meta.json").is_file()
    assert elsewhere.search(q, 2) == first.search(q, 2)
    # a change in the corpus content means a new index
    _write(tiny_corpus / "benign" / "extra.jsonl", [_rec("e1", ("user", "Hi"), ("assistant", "Hello!"))])
    third = ReplayIndex.load_or_build(tiny_corpus, cache)
    assert ReplayIndex.builds == before + 2
    assert third.path != first.path and third.size == first.size + 1


def test_compact_index_is_reused_across_upstreams(replay, replay_cache):
    from distillguard.upstreams.replay import ReplayUpstream

    before = ReplayIndex.builds
    other = ReplayUpstream(cache_dir=replay_cache)
    assert other.index.fingerprint == replay.index.fingerprint
    assert ReplayIndex.builds == before
