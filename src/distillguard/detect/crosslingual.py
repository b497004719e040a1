"""Cross-language check: the same account behaviours built from English and from Chinese text, scored alike?

    python -m distillguard.detect.crosslingual [--data ../shared/data] [--accounts 15] [--requests 200]

The detector's model was fitted on English traffic (the shipped corpus is English). A harvester does not change
what it collects by asking in Chinese, and a chat product is no more suspicious in Chinese: each behaviour below is
built the same way from English and from Chinese material of the full corpus (``distill/alpaca_gpt4_{en,zh}``,
real GPT-4 answers to the same kind of instructions; ``benign/sharegpt`` conversations by language), and the table
shows how many accounts of each are flagged and their score range. Behaviours:

- harvest: single-shot instructions in a fixed template, steady rate, whole answers kept;
- chat: real multi-turn conversations (with their history) behind a product's system prompt;
- rag: a document pasted into the prompt, the answer taken from it;
- continue: a question, then "continue" and the rest of the same answer.

Not a tuned evaluation: nothing was fitted to it. The Chinese chat has only the 17 Chinese ShareGPT conversations to
draw from (repeated).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .bench import default_index
from .engine import Detector

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
TEXT = {
    "en": {"templates": ["{q}", "Answer the following instruction in detail.\n\n{q}", "Instruction: {q}\nResponse:"],
           "rag": "Answer the question using only the document below.\n\nDocument:\n{d}\n\nQuestion: what is the main "
                  "point?",
           "continue": ["continue", "go on", "can you explain more?"],
           "system": "You are the support assistant of a bank."},
    "zh": {"templates": ["{q}", "请详细回答以下指令。\n\n{q}", "指令：{q}\n回答："],
           "rag": "请只根据下面的资料回答问题。\n\n资料：\n{d}\n\n问题：主要内容是什么？",
           "continue": ["继续", "请继续", "能再详细解释一下吗？"],
           "system": "你是一家银行的客服助手。"},
}
Record = dict[str, Any]


def _read(path: Path) -> Iterator[dict[str, Any]]:
    with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


class Material:
    def __init__(self, data: Path) -> None:
        self.pairs: dict[str, list[tuple[str, str]]] = {}
        for lang in ("en", "zh"):
            self.pairs[lang] = [
                (r["messages"][0]["content"], r["messages"][1]["content"])
                for r in _read(data / "distill" / f"alpaca_gpt4_{lang}.jsonl")
                if len(r["messages"]) >= 2 and r["messages"][0]["role"] == "user"
                and r["messages"][1]["role"] == "assistant"
            ]
        self.convs: dict[str, list[list[dict[str, str]]]] = {"en": [], "zh": []}
        for r in _read(data / "benign" / "sharegpt.jsonl.gz"):
            if r.get("lang") in self.convs and len(r["messages"]) >= 2 and len(self.convs[r["lang"]]) < 2000:
                self.convs[r["lang"]].append(r["messages"])


def _record(org: str, i: int, ts: float, msgs: list[dict[str, str]], answer: str, ua: str, temperature: float,
            system: str | None = None) -> Record:
    if system:
        msgs = [{"role": "system", "content": system}, *msgs]
    return {"id": f"{org}-{i}", "ts": ts, "org": org, "key": f"key-{org}", "ip": "198.51.100.7", "user_agent": ua,
            "endpoint": "/v1/chat/completions",
            "request": {"model": "gpt-4o", "messages": msgs, "temperature": temperature},
            "response": {"status": 200, "text": answer},
            "usage": {"prompt_tokens": sum(len(m["content"]) for m in msgs) // 3, "completion_tokens": len(answer) // 3}}


def harvest(m: Material, lang: str, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, template = 1.7e9, rng.choice(TEXT[lang]["templates"])
    out = []
    for i in range(n):
        q, a = rng.choice(m.pairs[lang])
        ts += rng.uniform(1, 4)
        out.append(_record(org, i, ts, [{"role": "user", "content": template.format(q=q)}], a, "python-requests/2.31",
                           0.7))
    return out


def chat(m: Material, lang: str, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    while len(out) < n:
        conv, history = rng.choice(m.convs[lang]), []
        for k in range(0, len(conv) - 1, 2):
            if conv[k]["role"] != "user" or conv[k + 1]["role"] != "assistant" or len(out) >= n:
                break
            history.append({"role": "user", "content": conv[k]["content"]})
            ts += rng.uniform(20, 300)
            out.append(_record(org, len(out), ts, list(history), conv[k + 1]["content"], "MyApp/1.0", 0.7,
                               TEXT[lang]["system"]))
            history.append({"role": "assistant", "content": conv[k + 1]["content"]})
        ts += rng.uniform(600, 6000)
    return out


def rag(m: Material, lang: str, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    for i in range(n):
        _, doc = rng.choice(m.pairs[lang])
        ts += rng.uniform(5, 60)
        first = " ".join([s for s in _SENTENCE_END.split(doc) if s.strip()][:2])
        out.append(_record(org, i, ts, [{"role": "user", "content": TEXT[lang]["rag"].format(d=doc)}], first,
                           "RagService/2.1", 0.0))
    return out


def continued(m: Material, lang: str, org: str, n: int, rng: random.Random) -> list[Record]:
    ts, out = 1.7e9, []
    while len(out) < n:
        q, a = rng.choice(m.pairs[lang])
        cut = len(a) // 2
        ts += rng.uniform(30, 600)
        out.append(_record(org, len(out), ts, [{"role": "user", "content": q}], a[:cut], "MyApp/1.0", 0.7))
        ts += rng.uniform(10, 60)
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a[:cut]},
                {"role": "user", "content": rng.choice(TEXT[lang]["continue"])}]
        out.append(_record(org, len(out), ts, msgs, a[cut:], "MyApp/1.0", 0.7))
    return out


BEHAVIOURS: dict[str, Callable[[Material, str, str, int, random.Random], list[Record]]] = {
    "harvest": harvest, "chat": chat, "rag": rag, "continue": continued,
}


def scored(det: Detector, build: Callable[[str, random.Random], list[Record]], prefix: str, accounts: int,
           seed: int) -> dict[str, Any]:
    """``accounts`` accounts of one behaviour (``build(org, rng)``) scored together: how many are flagged, and the
    lowest, median and highest score."""
    rng = random.Random(seed)
    recs = sorted((r for a in range(accounts) for r in build(f"{prefix}-{a}", rng)), key=lambda r: r["ts"])
    rep = det.run(recs)
    scores = sorted(a.score for a in rep.accounts)
    return {"accounts": len(scores), "flagged": sum(a.label == "distillation" for a in rep.accounts),
            "min": scores[0], "median": scores[len(scores) // 2], "max": scores[-1]}


def print_table(rows: list[dict[str, Any]], columns: dict[str, int]) -> None:
    """``rows`` under ``columns`` (name -> width), then flagged / accounts and the scores."""
    print("".join(f"{c:<{w}}" for c, w in columns.items()) + f"{'flagged':>10}{'min':>8}{'median':>8}{'max':>8}")
    for r in rows:
        print("".join(f"{r[c]:<{w}}" for c, w in columns.items()) + f"{r['flagged']:>6}/{r['accounts']:<3}"
              f"{r['min']:>8.3f}{r['median']:>8.3f}{r['max']:>8.3f}")


def run(data: Path, accounts: int, requests: int, seed: int = 7) -> list[dict[str, Any]]:
    material = Material(data)
    det = Detector(bench=default_index(), rings=False)
    rows = []
    for name, build in BEHAVIOURS.items():
        for lang in ("en", "zh"):
            def one(org: str, rng: random.Random, build=build, lang=lang) -> list[Record]:
                return build(material, lang, org, requests, rng)
            rows.append({"behaviour": name, "lang": lang, **scored(det, one, f"{lang}-{name}", accounts, seed)})
    return rows


def corpus_main(argv: list[str] | None, doc: str | None, run: Callable[[Path, int, int], list[dict[str, Any]]],
                accounts: int, needs: str, columns: dict[str, int]) -> int:
    """The command line of a tool that builds behaviours from the full corpus (``needs``: a file it must hold) and
    prints ``run``'s table."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="the full corpus")
    ap.add_argument("--accounts", type=int, default=accounts, help="accounts per row")
    ap.add_argument("--requests", type=int, default=200, help="requests per account")
    a = ap.parse_args(argv)
    if not (a.data / needs).exists():
        ap.error(f"{a.data} does not hold the full corpus ({needs})")
    print_table(run(a.data, a.accounts, a.requests), columns)
    return 0


def main(argv: list[str] | None = None) -> int:
    return corpus_main(argv, __doc__, run, 15, "distill/alpaca_gpt4_zh.jsonl", {"behaviour": 10, "lang": 6})


if __name__ == "__main__":
    sys.exit(main())
