"""Behaviours the simulator does not have, built from the full corpus: what does the detector make of them?

    python -m distillguard.detect.probes [--data ../shared/data] [--accounts 10] [--requests 200]

The model was fitted on the simulator's tenants. Production traffic holds products the simulator never built, and the
terms allow some uses that look like harvesting (building classifiers for internal use). Each behaviour below is
built from real text of the full corpus and scored by the shipped model, rings off (each account on its own); the
table shows how many accounts are flagged, against what the terms say they are. Nothing is fitted to it. Behaviours:

- agent (benign): a function-calling product, ``benign/glaive_toolcall`` conversations in the OpenAI tool format
  (``tools``, assistant ``tool_calls``, ``tool`` results), one request per assistant turn;
- stateless (benign): a chat bot without memory, sending each user message of real ShareGPT conversations alone;
- writing (benign): a copywriting product whose end users ask for writing tasks (the writing instructions of
  ``distill/alpaca_gpt4_en`` with their GPT-4 answers) through the product's few templates, single-shot;
- translate (benign): a translation product: Chinese texts in (``distill/alpaca_gpt4_zh`` answers), English out (an
  ``alpaca_gpt4_en`` answer of about the same size stands in for the translation: the features read the answer's
  language, size and words, not its meaning);
- synthdata (allowed): training data for the customer's own intent classifier: "write k messages a customer might
  send about <intent>" over a fixed label set, each prompt sent many times at a high temperature, answers lists of
  real end-user messages (``benign/sharegpt`` first turns);
- harvest (distillation): every kind of ``alpaca_gpt4_en`` instruction through one wrapper template, whole answers.

Known limitation this measures (ADR 0007; translate was one too, until ``language``): single-shot, ungrounded
generation with whole answers kept is the shape of harvesting, and a product that only does that (writing, a chat bot
without memory) scores as a harvester; so does an allowed generation job (synthdata).
"""

from __future__ import annotations

import bisect
import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bench import default_index
from . import crosslingual
from .crosslingual import Record, _read, corpus_main, scored
from .engine import Detector
from .language import size

_WRITING = re.compile(r"(Write|Compose|Create|Draft|Generate|Describe|Craft)\b")
_APP_TEMPLATES = ("{q}", "{q}\n\nTone: {tone}.", "You are a copywriter. {q} Keep the tone {tone}.")
_TONES = ("friendly", "professional", "playful", "formal", "persuasive")
_LABELS = {
    "bank": ("card lost", "card declined", "transfer delay", "wrong charge", "account locked", "fees"),
    "airline": ("flight delay", "lost baggage", "refund request", "seat change", "cancel booking", "upgrade"),
    "telecom": ("slow internet", "billing error", "roaming", "no signal", "porting number", "data plan"),
    "shop": ("late delivery", "damaged item", "return item", "wrong size", "payment failed", "track order"),
}
_SYNTH_TEMPLATES = (
    "Write {k} different messages a customer of a {d} company might send about '{i}'. Vary tone and length. "
    "Return a JSON list of strings.",
    "Generate {k} realistic support-chat messages ({d}) for the intent '{i}', one per line.",
)


class Material:
    def __init__(self, data: Path) -> None:
        pairs = [(r["messages"][0]["content"], r["messages"][1]["content"])
                 for r in _read(data / "distill" / "alpaca_gpt4_en.jsonl")
                 if len(r["messages"]) >= 2 and r["messages"][0]["role"] == "user"
                 and r["messages"][1]["role"] == "assistant"]
        self.pairs = {"en": pairs}  # (by language, as ``crosslingual.Material``'s: its harvester reads them)
        self.writing = [p for p in pairs if _WRITING.match(p[0])]
        self.zh_texts = [r["messages"][1]["content"] for r in _read(data / "distill" / "alpaca_gpt4_zh.jsonl")
                         if len(r["messages"]) >= 2 and r["messages"][1]["role"] == "assistant"]
        self.en_by_size = sorted((len(a), a) for _, a in pairs)
        self.tool_convs = [r for r in _read(data / "benign" / "glaive_toolcall.jsonl") if len(r["messages"]) >= 2]
        self.user_lines = []
        self.convs: list[list[dict[str, str]]] = []
        for r in _read(data / "benign" / "sharegpt.jsonl.gz"):
            if r.get("lang") != "en":
                continue
            first = next((m["content"] for m in r["messages"] if m["role"] == "user"), "")
            if 10 <= len(first) <= 300 and len(self.user_lines) < 3000:
                self.user_lines.append(first)
            msgs = r["messages"]
            if len(msgs) >= 4 and [m["role"] for m in msgs[:2]] == ["user", "assistant"] and len(self.convs) < 2000:
                self.convs.append(msgs)
            if len(self.user_lines) >= 3000 and len(self.convs) >= 2000:
                break


def _record(org: str, i: int, ts: float, msgs: list[dict[str, Any]], answer: str | None, ua: str,
            **params: Any) -> Record:
    text_in = sum(len(m.get("content") or "") for m in msgs)
    return {"id": f"{org}-{i}", "ts": ts, "org": org, "key": f"key-{org}", "ip": "198.51.100.9", "user_agent": ua,
            "endpoint": "/v1/chat/completions", "request": {"model": "gpt-4o-mini", "messages": msgs, **params},
            "response": {"status": 200, "text": answer},
            "usage": {"prompt_tokens": text_in // 4 + 1, "completion_tokens": len(answer or "{}") // 4 + 1}}


def agent(m: Material, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    system = "You are a helpful assistant with access to the following functions. Use them if required."
    temperature = rng.choice((0.0, 0.2, 0.7))
    while len(out) < n:
        conv = rng.choice(m.tool_convs)
        tools = [{"type": "function", "function": t} for t in json.loads(conv.get("meta", {}).get("tools") or "[]")]
        history: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for msg in conv["messages"]:
            if len(out) >= n:
                break
            if msg["role"] == "assistant":
                call = _tool_call(msg["content"], len(out))
                out.append(_record(org, len(out), ts, list(history), None if call else msg["content"],
                                   "OpenAI/Python 1.40.0", tools=tools, temperature=temperature))
                history.append({"role": "assistant", "content": None, "tool_calls": [call]} if call else
                               {"role": "assistant", "content": msg["content"]})
                ts += rng.uniform(1, 4)
            elif msg["role"] == "tool":
                history.append({"role": "tool", "tool_call_id": f"call_{len(out) - 1}", "content": msg["content"]})
                ts += rng.uniform(0.2, 1.5)
            else:
                history.append({"role": "user", "content": msg["content"]})
                ts += rng.uniform(5, 60)
        ts += rng.uniform(60, 3600)
    return out


def _tool_call(content: str, i: int) -> dict[str, Any] | None:
    """The OpenAI form of a glaive assistant turn that calls a function (its content is the call's JSON)."""
    if not content.startswith('{"name"'):
        return None
    try:
        call = json.loads(content)
    except ValueError:
        return None
    return {"id": f"call_{i}", "type": "function",
            "function": {"name": call.get("name", ""), "arguments": json.dumps(call.get("arguments", {}))}}


def stateless(m: Material, org: str, n: int, rng: random.Random) -> list[Record]:
    """A chat bot that sends each user message alone, without the conversation so far (no memory), one user at a
    time: real ShareGPT conversations, their recorded answers."""
    ts, out = 1.7e9, []
    while len(out) < n:
        conv = rng.choice(m.convs)
        for k in range(0, len(conv) - 1, 2):
            if conv[k]["role"] != "user" or conv[k + 1]["role"] != "assistant" or len(out) >= n:
                break
            ts += rng.uniform(20, 300)
            msgs = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": conv[k]["content"]}]
            out.append(_record(org, len(out), ts, msgs, conv[k + 1]["content"], "SlackBot/1.2", temperature=0.7))
        ts += rng.uniform(600, 6000)
    return out


def writing(m: Material, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    system = rng.choice((None, "You are WriteWell, an AI writing assistant for marketing teams."))
    temperature = rng.choice((0.7, 0.8, 1.0))
    for i in range(n):
        q, a = rng.choice(m.writing)
        msgs = [{"role": "user", "content": rng.choice(_APP_TEMPLATES).format(q=q, tone=rng.choice(_TONES))}]
        if system:
            msgs.insert(0, {"role": "system", "content": system})
        ts += rng.expovariate(1 / 90)
        out.append(_record(org, i, ts, msgs, a, "node-fetch/3.3", temperature=temperature,
                           max_tokens=rng.choice((800, 1000))))
    return out


def translate(m: Material, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    sizes = [k for k, _ in m.en_by_size]
    for i in range(n):
        text = rng.choice(m.zh_texts)
        j = min(bisect.bisect_left(sizes, size(text)), len(sizes) - 1)  # an English text of about the same size
        msgs = [{"role": "system", "content": "You are a professional translator."},
                {"role": "user", "content": "Translate the following text into English:\n\n" + text}]
        ts += rng.uniform(3, 30)
        out.append(_record(org, i, ts, msgs, m.en_by_size[j][1], "Translator/2.0", temperature=0.3))
    return out


def synthdata(m: Material, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    domain = rng.choice(sorted(_LABELS))
    for i in range(n):
        k = rng.choice((5, 10))
        prompt = rng.choice(_SYNTH_TEMPLATES).format(k=k, d=domain, i=rng.choice(_LABELS[domain]))
        answer = json.dumps(rng.sample(m.user_lines, k))
        ts += rng.uniform(2, 6)
        out.append(_record(org, i, ts, [{"role": "user", "content": prompt}], answer, "python-requests/2.31",
                           temperature=1.0))
    return out


def harvest(m: Material, org: str, n: int, rng: random.Random) -> list[Record]:
    """``crosslingual``'s English harvester."""
    return crosslingual.harvest(m, "en", org, n, rng)  # type: ignore[arg-type]


BEHAVIOURS: dict[str, tuple[str, Callable[[Material, str, int, random.Random], list[Record]]]] = {
    "agent": ("benign", agent), "stateless": ("benign", stateless), "writing": ("benign", writing),
    "translate": ("benign", translate), "synthdata": ("allowed", synthdata), "harvest": ("distillation", harvest),
}


def run(data: Path, accounts: int, requests: int, seed: int = 7) -> list[dict[str, Any]]:
    material = Material(data)
    det = Detector(bench=default_index(), rings=False)
    rows = []
    for name, (truth, build) in BEHAVIOURS.items():
        def one(org: str, rng: random.Random, build=build) -> list[Record]:
            return build(material, org, requests, rng)
        rows.append({"behaviour": name, "terms": truth, **scored(det, one, name, accounts, seed)})
    return rows


def main(argv: list[str] | None = None) -> int:
    return corpus_main(argv, __doc__, run, 10, "benign/glaive_toolcall.jsonl", {"behaviour": 11, "terms": 14})


if __name__ == "__main__":
    sys.exit(main())
