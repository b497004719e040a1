import pytest

from distillguard.detect.bench import BenchmarkIndex
from distillguard.detect.features import extract

GSM = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
       "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg.")


def rec(messages, answer="ok", **params):
    return {"id": "req_1", "ts": 10.0, "org": "org_a", "key": "key_1", "ip": "203.0.113.7", "user_agent": "ua",
            "request": {"model": "m", "messages": messages, **params},
            "response": {"status": 200, "text": answer}, "usage": {"prompt_tokens": 12, "completion_tokens": 300}}


def test_parameters_and_lengths():
    f = extract(rec([{"role": "user", "content": "Write 10 examples of haiku."}], n=4, temperature=1.2,
                    max_tokens=2048))
    assert (f.n, f.temperature, f.max_tokens, f.turns, f.follow_up) == (4, 1.2, 2048, 1, False)
    assert f.has("generate_n") and f.completion_tokens == 300 and f.ip_prefix == "203.0.113"


def test_multi_turn_follow_up():
    f = extract(rec([{"role": "user", "content": "How do I sort a list in Python?"},
                     {"role": "assistant", "content": "Use sorted(xs) or xs.sort(); sorted returns a new list."},
                     {"role": "user", "content": "what's the difference between sorted and sort again?"}],
                 answer="sorted returns a new list and leaves xs alone; xs.sort() sorts the list in place."))
    assert f.turns == 2 and f.follow_up


def test_missing_fields_are_tolerated():
    f = extract({"org": "o", "request": None, "response": "bad", "usage": None})
    assert f.turns == 0 and f.status == 200 and f.temperature is None and f.skeleton == ""


def test_benchmark_overlap_survives_a_wrapper():
    idx = BenchmarkIndex([GSM])
    wrapped = f"Question: {GSM}\nLet's think step by step. Give the final answer after ####."
    assert extract(rec([{"role": "user", "content": wrapped}]), idx).bench >= 2 / 3
    assert extract(rec([{"role": "user", "content": "Tell me about ducks and what they like to eat."}]), idx).bench == 0


def test_topic_buckets_are_the_same_in_every_process():
    """Reports must be reproducible: topic buckets may not depend on Python's per-process string hash seed."""
    import subprocess
    import sys

    code = ("from distillguard.detect.features import extract\n"
            "r = {'org': 'o', 'request': {'messages': [{'role': 'user', 'content': "
            "'Explain photosynthesis in plants and the Calvin cycle, with chlorophyll and light reactions'}]}}\n"
            "print(sorted(extract(r).topic))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1 and outs.pop().startswith("[")


def test_a_long_prompts_closing_instruction_is_read():
    doc = "The quarterly report covers revenue, costs and hiring across all regions. " * 20  # ~1.5k chars
    f = extract(rec([{"role": "user", "content": f"{doc}\n\nGenerate 10 question-answer pairs about this text."}]))
    assert f.has("generate_n") and f.has("dataset_format")
    # the tail is read from a line start: a word that merely begins the cut is not taken as the prompt's first word
    g = extract(rec([{"role": "user", "content": "x" * 1200 + " write it down"}]))
    assert not g.has("imperative")
    h = extract(rec([{"role": "user", "content": "x" * 1200 + "\nwrite it down"}]))
    assert h.has("imperative")


def test_answer_novelty_counts_the_answers_phrases_missing_from_the_prompt():
    from distillguard.detect.features import answer_novelty

    ctx = ("[1] The Zephyr 3 router supports WPA3 encryption and a guest network. Firmware updates are installed "
           "from the admin page under System Settings.")
    grounded = "Firmware updates are installed from the admin page under System Settings."
    novel = "Routers usually receive updates automatically; check the vendor website for a newer release."
    assert answer_novelty(grounded, f"{ctx}\nQuestion: how do I update the firmware?") == 0.0
    assert answer_novelty(novel, "How do I update my router?") == 1.0
    # the answer's words pasted before the prompt are not its phrases
    bag = " ".join(sorted(set(novel.lower().replace(";", "").replace(".", "").split())))
    assert answer_novelty(novel, f"{bag}\n\nHow do I update my router?") > 0.8
    assert answer_novelty("billing", "Classify this ticket: I was charged twice") == 0.0  # a bare label adds nothing
    # measured on the requests whose prompt hash is even; the others (and records without answer text) are unknown
    measured = [extract(rec([{"role": "user", "content": f"Tell me fact number {i}."}])) for i in range(40)]
    assert {f.novelty for f in measured if f.prompt_hash % 2 == 0} == {0.0}  # the answer is "ok": no word pair
    assert {f.novelty for f in measured if f.prompt_hash % 2 == 1} == {-1.0}
    assert 10 < sum(f.novelty == 0.0 for f in measured) < 30
    assert extract({"org": "o", "request": {"messages": []}}).novelty == -1.0


PAD = "\n\n".join(f"House rule {i}: keep the tone friendly and plain, and avoid jargon where a simpler word will do."
                  for i in range(20))  # ~2k characters of fixed text


def _account(requests, tokens_per_char=0.25):
    """An account state over chat requests given as message lists (prompt tokens counted from the characters)."""
    from distillguard.detect.account import AccountState

    st = AccountState("org_a")
    for i, msgs in enumerate(requests):
        r = rec(msgs, answer="word " * 100)
        r["id"], r["ts"] = f"req_{i}", 10.0 + i
        chars = sum(len(m["content"]) for m in msgs)
        r["usage"] = {"prompt_tokens": int(chars * tokens_per_char), "completion_tokens": 400}
        st.add(extract(r))
    return st


def test_a_fixed_block_resent_with_every_prompt_is_not_new_input():
    prompts = [f"Explain topic number {i} in depth, with examples." for i in range(200)]
    plain = _account([[{"role": "user", "content": p}] for p in prompts])
    system = _account([[{"role": "system", "content": PAD}, {"role": "user", "content": p}] for p in prompts])
    preamble = _account([[{"role": "user", "content": f"{PAD}\n\n{p}"}] for p in prompts])
    vp, vs, vq = plain.vector(), system.vector(), preamble.vector()
    # the padding makes every answer short next to its input ...
    assert vs["out_in_ratio"] < vp["out_in_ratio"] - 2 and vq["out_in_ratio"] < vp["out_in_ratio"] - 2
    # ... but it is written once (its first time counts): what the account writes anew per answer is about the
    # plain account's
    for v in (vs, vq):
        assert abs(v["out_new_ratio"] - vp["out_new_ratio"]) < 0.25
    assert vp["out_new_ratio"] == pytest.approx(vp["out_in_ratio"])  # nothing repeated: both the same


def test_new_input_leaves_out_earlier_answers_and_resent_turns():
    turns = [f"Question {i}: what about the case where the list holds {i} items of mixed types?" for i in range(6)]
    answers = [f"Answer {i}: " + "a long explanation of sorting " * 30 for i in range(6)]
    convo, requests = [], []
    for q, a in zip(turns, answers):
        convo = [*convo, {"role": "user", "content": q}]
        requests.append(list(convo))
        convo = [*convo, {"role": "assistant", "content": a}]
    st = _account(requests)
    new_share = st.new_input_tokens() / st.prompt_tokens
    written = sum(len(q) for q in turns)  # each user turn written once
    total = sum(sum(len(m["content"]) for m in r) for r in requests)
    assert new_share == pytest.approx(written / total, rel=0.02)
    # a distinct document in every request is all new input
    docs = _account([[{"role": "user", "content": f"Summarize:\n\n{'para %d ' % i * 80}\n\nthanks"}] for i in range(5)])
    assert docs.new_input_tokens() == pytest.approx(docs.prompt_tokens, rel=0.05)


def test_input_blocks_cut_long_texts_at_blank_lines():
    from distillguard.detect.features import MAX_BLOCKS, input_blocks

    short = input_blocks(["a\n\nb"])
    assert len(short) == 2 and short[1] == 4  # short text: one block, whole
    long = input_blocks([PAD])
    assert len(long) == 2 * 20 and sum(long[1::2]) == len(PAD)
    assert len(input_blocks([PAD] * 10)) == 2 * MAX_BLOCKS
