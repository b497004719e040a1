from distillguard.detect.bench import BenchmarkIndex
from distillguard.detect.features import extract

GSM = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
       "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg.")


def rec(messages, **params):
    return {"id": "req_1", "ts": 10.0, "org": "org_a", "key": "key_1", "ip": "203.0.113.7", "user_agent": "ua",
            "request": {"model": "m", "messages": messages, **params},
            "response": {"status": 200, "text": "ok"}, "usage": {"prompt_tokens": 12, "completion_tokens": 300}}


def test_parameters_and_lengths():
    f = extract(rec([{"role": "user", "content": "Write 10 examples of haiku."}], n=4, temperature=1.2,
                    max_tokens=2048))
    assert (f.n, f.temperature, f.max_tokens, f.turns, f.follow_up) == (4, 1.2, 2048, 1, False)
    assert f.has("generate_n") and f.completion_tokens == 300 and f.ip_prefix == "203.0.113"


def test_multi_turn_follow_up():
    f = extract(rec([{"role": "user", "content": "How do I sort a list in Python?"},
                     {"role": "assistant", "content": "Use sorted(xs) or xs.sort(); sorted returns a new list."},
                     {"role": "user", "content": "what's the difference between sorted and sort again?"}]))
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
