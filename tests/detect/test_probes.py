"""The probe tool (behaviours the simulator lacks) on a small corpus directory."""

from __future__ import annotations

import gzip
import json
import random

from distillguard.detect import probes
from distillguard.detect.language import language

from . import traffic as T
from .test_scripts import hanzify


def _corpus(tmp_path):
    # instructions with English prose answers: the translate probe pairs a text with an English answer of its size
    pool = [m for m in T.pools()["gpteacher"] + T.pools()["seed"]
            if len(m) >= 2 and m[0]["role"] == "user" and language(m[1]["content"]) == "en"]
    (tmp_path / "distill").mkdir()
    (tmp_path / "benign").mkdir()
    with open(tmp_path / "distill" / "alpaca_gpt4_en.jsonl", "w") as f:
        for m in random.Random(1).sample(pool, min(600, len(pool))):
            f.write(json.dumps({"messages": [dict(x) for x in m[:2]]}) + "\n")
    with open(tmp_path / "distill" / "alpaca_gpt4_zh.jsonl", "w") as f:
        for m in random.Random(2).sample(pool, min(300, len(pool))):
            f.write(json.dumps({"messages": [{"role": x["role"], "content": hanzify(x["content"])} for x in m[:2]]})
                    + "\n")
    with open(tmp_path / "benign" / "glaive_toolcall.jsonl", "w") as f:
        for m in T.pools()["glaive"]:
            f.write(json.dumps({"messages": [dict(x) for x in m], "meta": {"tools": "[]"}}) + "\n")
    with gzip.open(tmp_path / "benign" / "sharegpt.jsonl.gz", "wt") as f:
        for m in T.pools()["glaive"]:
            f.write(json.dumps({"lang": "en", "messages": [dict(x) for x in m if x["role"] in ("user", "assistant")]})
                    + "\n")
    return tmp_path


def test_agent_requests_use_the_openai_tool_format(tmp_path):
    m = probes.Material(_corpus(tmp_path))
    recs = probes.agent(m, "a", 120, random.Random(2))
    assert len(recs) == 120
    roles = {msg["role"] for r in recs for msg in r["request"]["messages"]}
    assert {"system", "user", "assistant", "tool"} <= roles
    calls = [msg for r in recs for msg in r["request"]["messages"] if msg.get("tool_calls")]
    assert calls and all(c["content"] is None and c["tool_calls"][0]["type"] == "function" for c in calls)
    assert any(r["response"]["text"] is None for r in recs)  # the turns that call a function
    assert probes._tool_call('{"name": "f", "arguments": {"x": 1}}', 3) == {
        "id": "call_3", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    assert probes._tool_call("Sure, here it is.", 3) is None and probes._tool_call('{"name": oops', 3) is None


def test_the_probe_table_separates_agents_and_translators_from_harvesters(tmp_path):
    rows = {r["behaviour"]: r for r in probes.run(_corpus(tmp_path), accounts=3, requests=150)}
    assert set(rows) == {"agent", "stateless", "writing", "translate", "synthdata", "harvest"}
    # (the compact corpus's answers are short next to their prompts, so its harvesters score lower than the full
    # corpus's: the order is what is checked here, the full-corpus table is in ADR 0007)
    assert rows["agent"]["flagged"] == 0 and rows["agent"]["max"] < 0.5 < rows["harvest"]["min"], rows
    assert rows["translate"]["flagged"] == 0 and rows["translate"]["max"] < rows["harvest"]["min"], rows
    assert rows["synthdata"]["terms"] == "allowed" and rows["writing"]["accounts"] == 3
