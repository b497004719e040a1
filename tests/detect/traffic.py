"""Small hand-built tenant traffic for the detector's tests, from the real prompts of the shipped compact corpus.

Independent of the simulator on purpose: the tests check behaviour on traffic the model was not trained on.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from distillguard.upstreams.corpus import load_corpus

T0 = 1_700_000_000.0


@lru_cache(maxsize=1)
def pools() -> dict[str, list[tuple[dict[str, str], ...]]]:
    out: dict[str, list[tuple[dict[str, str], ...]]] = {}
    for rec in load_corpus(None):
        src = rec.source.lower()
        name = ("gsm8k" if "grade-school" in src else "humaneval" if "human-eval" in src
                else "glaive" if "glaive" in src else "gpteacher" if "gpteacher" in src
                else "seed" if "seed_tasks" in src else "alpaca_eval" if "alpaca_eval" in src else "other")
        out.setdefault(name, []).append(rec.messages)
    return out


def _first_user(msgs: tuple[dict[str, str], ...]) -> str:
    return next((m["content"] for m in msgs if m["role"] == "user"), "")


def _answer(msgs: tuple[dict[str, str], ...]) -> str:
    return next((m["content"] for m in msgs if m["role"] == "assistant"), "ok")


def record(org: str, i: int, ts: float, messages: list[dict[str, str]], answer: str, *, key: str = "key_1",
           ua: str = "OpenAI/Python 1.54.0", ip: str = "198.51.100.7", **params: Any) -> dict[str, Any]:
    return {
        "id": f"req_{org}_{i:06d}", "ts": ts, "org": org, "key": key, "endpoint": "/v1/chat/completions",
        "ip": ip, "user_agent": ua, "request": {"model": "gpt-4o-mini", "messages": messages, **params},
        "response": {"status": 200, "text": answer, "finish_reason": "stop"},
        "usage": {"prompt_tokens": sum(len(m["content"]) for m in messages) // 4 + 1,
                  "completion_tokens": len(answer) // 4 + 1},
        "latency_ms": 500.0,
    }


HARVEST_TEMPLATES = [
    "You are an expert teacher. {x}\n\nGive a detailed, step-by-step answer.",
    "{x}\n\nRespond in a comprehensive way and format the answer as a numbered list.",
]


def harvester(org: str, n: int, rng: random.Random, *, start: float = T0, interval: float = 3.0,
              template: str | None = None, key: str = "key_1", ua: str = "python-httpx/0.27.0",
              ip: str = "203.0.113.9") -> list[dict[str, Any]]:
    """Single-shot instruction prompts at a steady machine rate, with a temperature sweep."""
    pool = pools()["gpteacher"] + pools()["seed"]
    out = []
    ts = start
    for i in range(n):
        msgs = rng.choice(pool)
        tpl = template or rng.choice(HARVEST_TEMPLATES)
        prompt = tpl.format(x=_first_user(msgs))
        ts += interval * rng.uniform(0.9, 1.1)
        out.append(record(org, i, ts, [{"role": "user", "content": prompt}], _answer(msgs), key=key, ua=ua, ip=ip,
                          temperature=rng.choice([0.7, 0.9, 1.0, 1.2]), max_tokens=2048))
    return out


def chatter(org: str, n: int, rng: random.Random, *, start: float = T0) -> list[dict[str, Any]]:
    """Multi-turn conversations that build on the answers, in bursty sessions during the day."""
    pool = [m for m in pools()["glaive"] if sum(1 for x in m if x["role"] == "user") >= 1]
    out: list[dict[str, Any]] = []
    ts = start
    i = 0
    while i < n:
        ts += rng.expovariate(1 / 3600.0) + (12 * 3600 if rng.random() < 0.1 else 0)
        conv = rng.choice(pool)
        history: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful assistant."}]
        turns = [m for m in conv if m["role"] in ("user", "assistant")]
        for k in range(0, len(turns) - 1, 2):
            if turns[k]["role"] != "user" or i >= n:
                break
            history.append({"role": "user", "content": turns[k]["content"]})
            answer = turns[k + 1]["content"]
            out.append(record(org, i, ts, list(history), answer, ip="192.0.2.44"))
            history.append({"role": "assistant", "content": answer})
            i += 1
            ts += rng.uniform(10, 120)
        if i < n and len(history) > 2:  # a follow-up on the answer
            last = history[-1]["content"]
            word = next((w for w in last.split() if len(w) > 6), "that")
            history.append({"role": "user", "content": f"Thanks! Can you explain {word} a bit more?"})
            out.append(record(org, i, ts, list(history), "Sure, " + last[:300], ip="192.0.2.44"))
            i += 1
    return out


def evaluator(org: str, n: int, rng: random.Random, *, start: float = T0) -> list[dict[str, Any]]:
    """Benchmark runs: exact benchmark phrasing, temperature 0, answer-format instructions."""
    gsm = pools()["gsm8k"]
    he = pools()["humaneval"]
    out = []
    ts = start
    for i in range(n):
        if i % 3 == 2:
            msgs = rng.choice(he)
            prompt = "Complete the following Python function.\n\n" + _first_user(msgs)
        else:
            msgs = rng.choice(gsm)
            prompt = f"Question: {_first_user(msgs)}\nLet's think step by step. Put your final answer after '####'."
        ts += rng.uniform(0.5, 2.0)
        out.append(record(org, i, ts, [{"role": "user", "content": prompt}], _answer(msgs), temperature=0.0,
                          ua="lm-eval/0.4", ip="198.18.0.3"))
    return out


def classifier_job(org: str, n: int, rng: random.Random, *, start: float = T0) -> list[dict[str, Any]]:
    """An allowed batch job: one classification template over documents, steady rate, one-word answers."""
    docs = [_first_user(m) for m in pools()["glaive"]] + [_answer(m)[:800] for m in pools()["alpaca_eval"]]
    out = []
    ts = start
    for i in range(n):
        doc = rng.choice(docs)
        prompt = ("Classify the following support ticket into one of: billing, technical, account, other. "
                  f"Reply with the category only.\n\nTicket:\n{doc}")
        ts += 2.0 * rng.uniform(0.95, 1.05)
        label = rng.choice(["billing", "technical", "account", "other"])
        r = record(org, i, ts, [{"role": "user", "content": prompt}], label, temperature=0.0, max_tokens=5,
                   ua="python-requests/2.32", ip="203.0.113.200")
        out.append(r)
    return out


def ring(prefix: str, members: int, per: int, rng: random.Random) -> list[dict[str, Any]]:
    """Small accounts sharing one harvesting scaffold, staggered, each with its own IP and user agent."""
    tpl = "Write a detailed tutorial for beginners about the following task, with examples:\n{x}\nUse markdown."
    out = []
    for k in range(members):
        out += harvester(f"{prefix}{k:03d}", per, rng, start=T0 + k * 900, interval=rng.uniform(5, 20),
                         template=tpl, ua=f"Mozilla/5.0 client-{k}", ip=f"100.{64 + k}.{k}.9")
    return out


def mixed(org: str, n: int, share: float, rng: random.Random) -> list[dict[str, Any]]:
    """A busy benign account of which ``share`` is harvesting through a second key."""
    benign = chatter(org, int(n * (1 - share)), rng)
    harvest = harvester(org, int(n * share), rng, key="key_2", interval=60.0)
    for i, r in enumerate(harvest):
        r["id"] = f"req_{org}_h{i:05d}"
    return sorted(benign + harvest, key=lambda r: r["ts"])
