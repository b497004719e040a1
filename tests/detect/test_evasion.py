"""The evasion check rewrites only distillation accounts, each rewrite the way it says."""

from __future__ import annotations

import random

import orjson

from distillguard.detect import evasion
from distillguard.detect.evasion import CONTINUED, PREAMBLE, REWRITES, rewritten_streams
from distillguard.detect.features import answer_key

from . import traffic as T


def _population():
    rng = random.Random(3)
    recs = T.harvester("h", 30, rng) + T.chatter("c", 30, rng)
    labels = {"h": {"org": "h", "label": "distillation"}, "c": {"org": "c", "label": "benign"}}
    return sorted(recs, key=lambda r: r["ts"]), labels


def test_rewrites_change_the_request_as_named():
    body = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}]}
    q = orjson.loads(orjson.dumps(body))
    REWRITES["question"](q)
    assert q["messages"][-1]["content"] == "Question: Q?\nFinal answer:"
    p = orjson.loads(orjson.dumps(body))
    REWRITES["preamble"](p)
    assert p["messages"][-1]["content"].startswith(PREAMBLE) and p["messages"][-1]["content"].endswith("Q?")
    s = orjson.loads(orjson.dumps(body))
    REWRITES["system"](s)
    assert [m["role"] for m in s["messages"]] == ["system", "user"]
    assert s["messages"][0]["content"] == "Answer accurately and completely."
    c = orjson.loads(orjson.dumps(body))
    REWRITES["cap256"](c)
    assert c["max_tokens"] == 256
    t = orjson.loads(orjson.dumps(body))
    REWRITES["temp0"](t)
    assert t["temperature"] == 0.0 and t["messages"] == body["messages"]


def test_only_distillation_accounts_are_rewritten():
    recs, labels = _population()
    streams = rewritten_streams(recs, labels, ("as-is", "question", "twice"))
    n_h = sum(1 for r in recs if r["org"] == "h")
    n_c = len(recs) - n_h
    assert len(streams["as-is"]) == len(recs)
    assert len(streams["twice"]) == len(recs) + n_h
    plain = {f.id: f for _, f in streams["as-is"]}
    asked = {f.id: f for _, f in streams["question"]}
    changed = {i for i in plain if plain[i].prompt_hash != asked[i].prompt_hash}
    assert len(changed) == n_h and all(i.startswith("req_h_") for i in changed)
    assert n_c > 0


def test_the_command_prints_a_row_per_variant(tmp_path, capsys):
    recs, labels = _population()
    traffic = tmp_path / "t.jsonl"
    traffic.write_bytes(b"\n".join(orjson.dumps(r) for r in recs))
    lab = tmp_path / "l.jsonl"
    lab.write_bytes(b"\n".join(orjson.dumps(v) for v in labels.values()))
    assert evasion.main(["--traffic", str(traffic), "--labels", str(lab), "--variants", "as-is,question"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines()[1:] if ln.strip()]
    assert [r.split()[1] for r in rows] == ["as-is", "question"]


def test_history_rewrites_make_follow_ups_made_up_or_of_the_accounts_previous_exchange():
    body = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}]}
    h = orjson.loads(orjson.dumps(body))
    REWRITES["history"](h)
    assert [m["role"] for m in h["messages"]] == ["system", "user", "assistant", "user"]
    assert h["messages"][2]["content"].endswith("Q?") and h["messages"][3]["content"] == "Q?"
    recs, labels = _population()
    streams = rewritten_streams(recs, labels, ("as-is", CONTINUED))
    harvest = [r for r in recs if r["org"] == "h"]
    cont = {f.id: f for _, f in streams[CONTINUED]}
    first, second = cont[harvest[0]["id"]], cont[harvest[1]["id"]]
    assert first.turns == 1 and second.turns == 2  # the first request has no previous exchange to continue
    assert second.prev_key == answer_key(harvest[0]["response"]["text"])  # the answer it was really served
    assert all(cont[r["id"]].turns == 1 for r in recs if r["org"] == "c" and len(r["request"]["messages"]) == 2)


def test_a_rewrite_is_charged_the_input_it_adds_and_no_more_answer_than_its_cap():
    """The gateway counts what a rewritten request sends: a padded system prompt or a made-up history adds input
    tokens (so an answer is short next to its input, as it would be), and a cap cuts the answer's tokens."""
    from distillguard.tokens import count_text

    recs, labels = _population()
    for r in recs[::2]:
        r["usage"]["completion_tokens"] = 900  # long answers, for the cap
    streams = rewritten_streams(recs, labels, ("as-is", "padded", "history", "cap256", "temp0"))
    by = {v: {f.id: f for _, f in s} for v, s in streams.items()}
    harvest = [i for i in by["as-is"] if i.startswith("req_h_")]
    chat = [i for i in by["as-is"] if i.startswith("req_c_")]
    pad = count_text(evasion.PADDING, "gpt-4o-mini")
    for i in harvest:
        plain = by["as-is"][i]
        assert pad <= by["padded"][i].prompt_tokens - plain.prompt_tokens <= pad + 8
        assert by["history"][i].prompt_tokens > plain.prompt_tokens
        assert by["cap256"][i].completion_tokens == min(plain.completion_tokens, evasion.CAP)
        assert (by["temp0"][i].prompt_tokens, by["temp0"][i].completion_tokens) == \
            (plain.prompt_tokens, plain.completion_tokens)
    assert any(by["as-is"][i].completion_tokens > evasion.CAP for i in harvest)  # the cap does cut something
    for i in chat:  # benign accounts are left as they are
        assert by["padded"][i].prompt_tokens == by["as-is"][i].prompt_tokens
