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
