"""Evaluation tenants: benchmark runs with the harnesses' exact phrasing, temperature 0, low volume.

Benchmarks: gsm8k, humaneval, mt_bench, alpaca_eval, vicuna_bench (from the corpus) and an MMLU-style
multiple-choice set generated from benchmark phrasing conventions (there is no MMLU copy here: the
questions are GSM8K problems turned into four-option items, subject "elementary mathematics").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from .benign import chat_body, user_turns
from .corpus import Item
from .tenant import CHAT, COMPLETIONS, Behaviour, Req, Tenant

BENCHMARKS = ("gsm8k", "humaneval", "mt_bench", "alpaca_eval", "mmlu")

GSM8K_FORMATS = (
    ("Solve the following math problem step by step. The last line of your response should be of the form "
     "\"Answer: $ANSWER\" (without quotes) where $ANSWER is the answer to the problem.\n\n{q}\n\nRemember to put "
     "your answer on its own line after \"Answer:\", and you do not need to use a \\boxed command."),
    "{shots}Question: {q}\nAnswer:",
    "Q: {q}\nA: Let's think step by step.",
)
HUMANEVAL_CHAT = (
    ("Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
     "```\n{p}\n```"),
    "Complete the following Python function. Return only the code.\n\n{p}",
)
HUMANEVAL_STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
MMLU_CHAT = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
    "answering.\n\n{q}\n\nA) {a}\nB) {b}\nC) {c}\nD) {d}"
)
MMLU_COMPLETION = "The following are multiple choice questions (with answers) about {subject}.\n\n{shots}{q}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"

_NUM = re.compile(r"####\s*([-\d,\.]+)")


def gsm8k_answer(item: Item) -> str | None:
    m = _NUM.search(item.answer_text())
    return m.group(1).replace(",", "") if m else None


def _mmlu_item(rng: random.Random, item: Item) -> tuple[str, list[str], int] | None:
    ans = gsm8k_answer(item)
    try:
        val = float(ans) if ans is not None else None
    except ValueError:
        val = None
    if val is None:
        return None
    opts = {val}
    while len(opts) < 4:
        opts.add(val + rng.choice((-1, 1)) * rng.choice((1, 2, 3, 5, 10, val * 0.5 or 4)))
    shown = [f"{o:g}" for o in opts]
    rng.shuffle(shown)
    return item.first_user, shown, shown.index(f"{val:g}")


def _gsm8k_shots(rng: random.Random, pool: tuple[Item, ...], k: int) -> str:
    shots = [pool[rng.randrange(len(pool))] for _ in range(k)]
    return "".join(f"Question: {s.first_user}\nAnswer: {s.answer_text()}\n\n" for s in shots)


def _requests(rng: random.Random, bench: str, t: Tenant) -> list[tuple[str, dict[str, Any], list[str]]]:
    """One run of a benchmark: (endpoint, body, follow-up turns) per item, in the harness's order."""
    c = t.corpus
    model = str(t.extra.get("eval_model", "gpt-4o-mini"))
    out: list[tuple[str, dict[str, Any], list[str]]] = []
    if bench == "gsm8k":
        pool = c.pool("gsm8k")
        fmt = rng.choice(GSM8K_FORMATS)
        shots = _gsm8k_shots(rng, pool, 8) if "{shots}" in fmt else ""
        for it in pool:
            text = fmt.format(q=it.first_user, shots=shots)
            extra = {"stop": ["Question:"]} if shots else {}
            out.append((CHAT, chat_body(model, [{"role": "user", "content": text}], temperature=0, max_tokens=512,
                                        **extra), []))
    elif bench == "humaneval":
        legacy = rng.random() < 0.4
        fmt = rng.choice(HUMANEVAL_CHAT)
        for it in c.pool("humaneval"):
            if legacy:
                out.append((COMPLETIONS, {"model": "gpt-3.5-turbo-instruct", "prompt": it.first_user, "temperature": 0,
                                          "max_tokens": 512, "stop": HUMANEVAL_STOP}, []))
            else:
                out.append((CHAT, chat_body(model, [{"role": "user", "content": fmt.format(p=it.first_user)}],
                                            temperature=0, max_tokens=1024), []))
    elif bench == "mt_bench":
        for it in c.pool("mt_bench"):
            turns = user_turns(it)
            if turns:
                out.append((CHAT, chat_body(model, [{"role": "user", "content": turns[0]}], temperature=0,
                                            max_tokens=1024), turns[1:2]))
    elif bench in ("alpaca_eval", "vicuna_bench"):
        for it in c.pool(bench):
            out.append((CHAT, chat_body(model, [{"role": "user", "content": it.first_user}], temperature=0,
                                        max_tokens=2048), []))
    elif bench == "mmlu":
        pool = c.pool("gsm8k")
        chat = rng.random() < 0.5
        shots = ""
        if not chat:
            for s in pool[:5]:
                mi = _mmlu_item(rng, s)
                if mi:
                    shots += MMLU_COMPLETION.split("{shots}")[1].format(q=mi[0], a=mi[1][0], b=mi[1][1], c=mi[1][2],
                                                                        d=mi[1][3]) + f" {'ABCD'[mi[2]]}\n\n"
        for it in pool[5:]:
            mi = _mmlu_item(rng, it)
            if mi is None:
                continue
            q, o, _ = mi
            if chat:
                body = chat_body(model, [{"role": "user", "content": MMLU_CHAT.format(q=q, a=o[0], b=o[1], c=o[2],
                                                                                    d=o[3])}], temperature=0)
                out.append((CHAT, body, []))
            else:
                prompt = MMLU_COMPLETION.format(subject="elementary mathematics", shots=shots, q=q, a=o[0], b=o[1],
                                                c=o[2], d=o[3])
                out.append((COMPLETIONS, {"model": "gpt-3.5-turbo-instruct", "prompt": prompt, "temperature": 0,
                                          "max_tokens": 1}, []))
    return out


def eval_runs(t: Tenant, n: int) -> Behaviour:
    """Runs of one or two benchmarks (a subset each), fired by a harness with bounded concurrency."""
    rng = t.rng
    benches = list(t.spec.param("benchmarks") or rng.sample(BENCHMARKS, rng.randint(1, 2)))
    sent = 0
    run = 0
    while sent < n and run < 50:
        bench = benches[run % len(benches)]
        t.extra["eval_model"] = rng.choice(("gpt-4o-mini", "gpt-4o"))
        reqs = _requests(rng, bench, t)
        run += 1
        if not reqs:
            if run >= len(benches) and sent == 0:
                return
            continue
        size = min(len(reqs), n - sent, rng.choice((50, 100, 200, 400, 10_000)))
        start = rng.sample(range(len(reqs)), size) if size < len(reqs) else range(len(reqs))
        chosen = [reqs[i] for i in sorted(start)]
        ts = t.t0 + rng.uniform(0, (t.t1 - t.t0) * 0.9)
        conc = rng.choice((1, 4, 8, 16))
        for endpoint, body, follow in chosen:
            reply = yield Req(ts, endpoint, body, 0)
            sent += 1
            ts += max(reply.latency_s, 0.05) / conc + rng.uniform(0.0, 0.05)
            if follow and sent < n and reply.status == 200 and reply.text is not None:
                msgs = body["messages"] + [{"role": "assistant", "content": reply.text},
                                           {"role": "user", "content": follow[0]}]
                reply = yield Req(ts, endpoint, {**body, "messages": msgs}, 0)
                sent += 1
                ts += max(reply.latency_s, 0.05) / conc
            if sent >= n:
                return


EvalFn = Callable[[Tenant, int], Behaviour]
