"""Evasion check: rewrite every distillation account's requests one cheap way, score, and compare with as-is.

    python -m distillguard.detect.evasion --traffic T.jsonl --labels L.jsonl [--model M.json ...]

Each rewrite is something a harvester can do for free without changing what it collects: wrap prompts in a
benchmark-like frame, put a fixed preamble, a block of another language or a block of common words before them, add
a system prompt (a short one, or a long one padding every request), send each prompt twice, cap answers at 256
tokens, send temperature 0, make each request the follow-up of a made-up exchange. A rewritten request is charged
what the gateway would count: its extra input tokens (tiktoken, as ``usage``) and, under a cap, at most the capped
answer. Benign and evaluation accounts are left as they are, so the benign FPR column is the same for every row.
A detector that falls apart under one of these is keyed on how prompts are dressed, not on what is harvested. Run
it on DEV traffic when choosing features; report it on TEST traffic.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from ..choices import comma_list
from ..sim import metrics as M
from ..tokens import count_messages
from .bench import BenchmarkIndex, default_index
from .engine import Detector
from .experiment import table_row
from .features import RequestFeatures, extract
from .model import ScoringModel
from .text import marker_bits, words
from .train import read_jsonl, read_labels

PREAMBLE = ("You are given a task from our internal queue. Read the whole task carefully, think about what a careful "
            "expert would write, and answer it fully. ") * 12  # ~2.3k characters, the same before every prompt

# the same block of another language before every prompt: to pass each answer off as a rendering (translation) of it
FOREIGN = ("本公司任务队列中的每一项任务都需要仔细阅读。请认真思考一位细心的专家会怎样回答，然后完整、准确地作答。"
           "所有回答都会由我们的团队逐条审核，并用于改进我们对客户的服务质量。") * 3  # ~250 characters, ~750 bytes

Rewrite = Callable[[dict[str, Any]], None]


def _last_user(req: dict[str, Any]) -> dict[str, Any] | None:
    for m in reversed(req.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return m
    return None


def question_frame(req: dict[str, Any]) -> None:
    """Dress the prompt as a benchmark item ("Question: ... Final answer:")."""
    m = _last_user(req)
    if m is not None:
        m["content"] = f"Question: {m['content']}\nFinal answer:"


def preamble(req: dict[str, Any]) -> None:
    """The same long instruction block before every prompt."""
    m = _last_user(req)
    if m is not None:
        m["content"] = f"{PREAMBLE}\n\n{m['content']}"


def foreign_block(req: dict[str, Any]) -> None:
    """The same block of Chinese text before every prompt."""
    m = _last_user(req)
    if m is not None:
        m["content"] = f"{FOREIGN}\n\n{m['content']}"


def system_prompt(req: dict[str, Any]) -> None:
    """A plain system prompt on every request (no persona: "You are ..." would trip the persona marker)."""
    msgs = [m for m in req.get("messages") or [] if not (isinstance(m, dict) and m.get("role") == "system")]
    req["messages"] = [{"role": "system", "content": "Answer accurately and completely."}, *msgs]


PADDING = ("Our company answers questions for customers in many fields. Each answer is read by a member of our "
           "team before it is sent on, and kept on file for later reference. ") * 12  # ~1.9k characters


def padded(req: dict[str, Any]) -> None:
    """A long, fixed system prompt on every request (~400 tokens, no instruction-style wording): input tokens that
    cost little and make every answer short next to its input."""
    msgs = [m for m in req.get("messages") or [] if not (isinstance(m, dict) and m.get("role") == "system")]
    req["messages"] = [{"role": "system", "content": PADDING}, *msgs]


def common_words_block(answers: Iterable[str], chars: int = 8000) -> str:
    """The most frequent content words of ``answers``, joined, at most ``chars`` long."""
    counts: Counter[str] = Counter()
    for a in answers:
        counts.update(w for w in words(a[:2000].lower(), 400) if len(w) > 3)
    out: list[str] = []
    size = 0
    for w, _ in counts.most_common():
        if size + len(w) + 1 > chars:
            break
        # a careful harvester keeps the part the detector reads (the head) free of instruction-style markers
        if size < 700 and marker_bits(f"keywords: {' '.join(out)} {w}"[:700]):
            continue
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


@lru_cache(maxsize=1)
def _corpus_block() -> str:
    from ..upstreams.corpus import load_corpus

    return common_words_block(m["content"] for rec in load_corpus(None) for m in rec.messages
                              if m["role"] == "assistant")


STUFFING: dict[str, str] = {}  # "block": the words ``stuffed`` uses (main: from the traffic's own answers)


def stuffed(req: dict[str, Any]) -> None:
    """A block of common answer words before every prompt, so that an answer's words appear in its prompt (aimed at
    ``answer_grounding``). The block is the traffic's own most frequent answer words (the strongest such list a
    harvester could compile from its earlier answers), else the shipped corpus's."""
    m = _last_user(req)
    if m is not None:
        block = STUFFING.get("block") or _corpus_block()
        m["content"] = f"Keywords: {block}\n\n{m['content']}"


def fake_history(req: dict[str, Any]) -> None:
    """A made-up earlier exchange before the prompt, its "answer" restating the prompt: the request looks like a
    follow-up that builds on an answer (multi-turn depth, ``follow_up``), for the price of the extra input tokens."""
    m = _last_user(req)
    if m is None:
        return
    msgs = req.get("messages") or []
    i = next(k for k, x in enumerate(msgs) if x is m)
    req["messages"] = [*msgs[:i], {"role": "user", "content": "Can you help me with something?"},
                       {"role": "assistant", "content": f"Of course. You would like to know: {m['content'][:1000]}"},
                       *msgs[i:]]


def cap_answers(req: dict[str, Any]) -> None:
    """``max_tokens: 256`` on every request (``charge`` cuts the recorded answer's tokens to it)."""
    req["max_tokens"] = CAP


def temperature_zero(req: dict[str, Any]) -> None:
    """``temperature: 0`` on every request (as a benchmark run sends it)."""
    req["temperature"] = 0.0


TWICE = "twice"  # each request sent a second time, identical, right after the first
CONTINUED = "continued"  # each request continues the account's previous exchange, with a short anaphoric opener


def _continue(req: dict[str, Any], last: tuple[str, str] | None) -> None:
    """Put the account's real previous exchange (``last``: its prompt and the answer it was served) before the
    prompt, opened with "Also, ": the request passes as a follow-up of an answer the account was served."""
    m = _last_user(req)
    if m is None or last is None:
        return
    msgs = req.get("messages") or []
    i = next(k for k, x in enumerate(msgs) if x is m)
    req["messages"] = [*msgs[:i], {"role": "user", "content": last[0]}, {"role": "assistant", "content": last[1]},
                       {"role": "user", "content": f"Also, {m['content']}"}, *msgs[i + 1:]]


REWRITES: dict[str, Rewrite | None] = {
    "as-is": None, "question": question_frame, "preamble": preamble, "foreign": foreign_block, "system": system_prompt,
    "padded": padded, "twice": None, "cap256": cap_answers, "temp0": temperature_zero, "stuffed": stuffed,
    "history": fake_history, CONTINUED: None,
}
CAP = 256  # cap256's max_tokens


def input_tokens(rec: dict[str, Any]) -> int:
    """The tokens of a record's messages, as the gateway counts them (tiktoken)."""
    req = rec.get("request")
    if not isinstance(req, dict):
        return 0
    return count_messages(req.get("messages") or [], str(req.get("model") or "gpt-4o-mini"))


def charge(rec: dict[str, Any], sent: int) -> None:
    """Bring a rewritten record's ``usage`` in line with its request, as the gateway would count it: the input
    tokens the rewrite added to the messages (``sent``: ``input_tokens`` of the original), and no more than
    ``max_tokens`` of answer."""
    req, usage = rec.get("request"), rec.get("usage")
    if not isinstance(req, dict) or not isinstance(usage, dict):
        return
    extra = input_tokens(rec) - sent
    if extra:
        usage["prompt_tokens"] = max(0, int(usage.get("prompt_tokens") or 0) + extra)
    cap = req.get("max_tokens")
    if isinstance(cap, int) and not isinstance(cap, bool) and int(usage.get("completion_tokens") or 0) > cap:
        usage["completion_tokens"] = cap


def rewritten_streams(records: Iterable[dict[str, Any]], labels: dict[str, dict[str, Any]],
                      variants: Iterable[str] = tuple(REWRITES), bench: BenchmarkIndex | None = None,
                      ) -> dict[str, list[tuple[str, RequestFeatures]]]:
    """Per variant, the features of every labelled record, distillation accounts' requests rewritten."""
    names = list(variants)
    streams: dict[str, list[tuple[str, RequestFeatures]]] = {v: [] for v in names}
    last: dict[str, tuple[str, str]] = {}  # (CONTINUED) per account, its previous prompt and answer
    for rec in records:
        org = rec.get("org")
        lab = labels.get(str(org))
        if lab is None:
            continue
        plain = extract(rec, bench)
        sent = input_tokens(rec) if lab.get("label") == "distillation" else 0  # counted once, for every rewrite
        for v in names:
            fn = REWRITES[v]
            if v == CONTINUED and lab.get("label") == "distillation":
                r = copy.deepcopy(rec)
                req = r.get("request")
                if isinstance(req, dict):
                    m = _last_user(req)
                    _continue(req, last.get(str(org)))
                    answer = (r.get("response") or {}).get("text")
                    if m is not None and isinstance(answer, str) and answer:
                        last[str(org)] = (m["content"].removeprefix("Also, "), answer)
                    charge(r, sent)
                streams[v].append((org, extract(r, bench)))
                continue
            if lab.get("label") != "distillation" or fn is None:
                streams[v].append((org, plain))
                if v == TWICE and lab.get("label") == "distillation":
                    streams[v].append((org, plain))
                continue
            r = copy.deepcopy(rec)
            req = r.get("request")
            if isinstance(req, dict):
                fn(req)
                charge(r, sent)
            streams[v].append((org, extract(r, bench)))
    for s in streams.values():
        s.sort(key=lambda p: p[1].ts)
    return streams


def evaluate(model: ScoringModel, stream: list[tuple[str, RequestFeatures]],
             labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rep = Detector(model=model).run_features(stream)
    rows = M.join([a.to_json() for a in rep.accounts], list(labels.values()))
    pos = [r for r in rows if r.positive]
    return {**table_row(rows), "flagged": sum(r.flagged for r in pos) / len(pos) if pos else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traffic", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--model", action="append", default=[], help="model file(s); default: the shipped model")
    ap.add_argument("--variants", default=",".join(REWRITES), help=f"comma-separated, of: {', '.join(REWRITES)}")
    a = ap.parse_args(argv)
    variants = comma_list(ap, a.variants, REWRITES, "variant")
    labels = {str(k): dict(v) for k, v in read_labels(a.labels).items()}
    models = {Path(p).name: ScoringModel.load(p) for p in a.model} or {"shipped": ScoringModel.load()}
    if "stuffed" in variants:
        answers = (str((r.get("response") or {}).get("text") or "") for r in read_jsonl(a.traffic))
        STUFFING["block"] = common_words_block(islice(answers, 20000))
    streams = rewritten_streams(read_jsonl(a.traffic), labels, variants, default_index())
    cols = ("auc", "tpr@0.1%", "flagged", "benign_fpr")
    print(f"{'model':<24}{'variant':<10}" + "".join(f"{c:>11}" for c in cols))
    for name, model in models.items():
        for v in variants:
            row = evaluate(model, streams[v], labels)
            print(f"{name[:23]:<24}{v:<10}" + "".join(f"{M.fmt(row[c]):>11}" for c in cols), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
