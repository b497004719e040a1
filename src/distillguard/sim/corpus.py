"""The simulator's view of the corpus: prompt pools by purpose, split into disjoint dev/test halves.

Records come from the same files the replay upstream reads (``upstreams.corpus.corpus_files``), but
with their ``meta`` kept (ShareGPT conversation ids, benchmark names) and prompt-only records kept as
prompts. Every record lands in ``dev`` or ``test`` by a hash of its *group*: the ShareGPT
conversation id before ``_`` (one chat never lands on both sides), else the record id.

Pools (each a tuple of ``Item``; empty when the corpus lacks the source):
``chat`` (multi-turn end-user conversations: ShareGPT, glaive), ``chat_single`` (single user
questions: AlpacaEval prompts in the compact corpus), ``code`` (coding questions), ``tool``
(toolformer-style), ``instruct`` (Alpaca/self-instruct style instructions), ``seed`` (the 175 seed
tasks), ``docs`` (long answer texts reused as documents), and the benchmarks ``gsm8k``,
``humaneval``, ``mt_bench``, ``alpaca_eval``, ``vicuna_bench``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..jsonl import read_objects
from ..upstreams.corpus import content_text, corpus_files

Split = Literal["dev", "test", "all"]
SPLITS: tuple[str, ...] = ("dev", "test", "all")

# A paraphrase of the self-instruct generation prompt, used when the corpus has no generation_prompts file.
FALLBACK_GENERATION_PROMPT = (
    "You are asked to come up with a set of 20 diverse task instructions. These task instructions will be "
    "given to a GPT model and we will evaluate the GPT model for completing the instructions.\n\n"
    "Here are the requirements:\n1. Try not to repeat the verb for each instruction to maximize diversity.\n"
    "2. The language used for the instruction also should be diverse.\n3. The type of instructions should be "
    "diverse: open-ended generation, classification, editing, etc.\n4. The instructions should be in English.\n"
    "5. The output should be an appropriate response to the instruction and the input.\n\nList of 20 tasks:"
)


@dataclass(frozen=True, slots=True)
class Item:
    """One corpus record as the simulator uses it."""

    id: str
    source: str
    lang: str
    messages: tuple[dict[str, str], ...]  # original turns (system/user/assistant/tool)
    topic: str  # coarse topic bucket, for topic drift

    @property
    def first_user(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "user"), "")

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "user")

    def answer_text(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "assistant"), "")


def split_group(rec_id: str, meta: dict[str, Any] | None) -> str:
    """The unit of splitting: a ShareGPT conversation (id before ``_``), else the record."""
    conv = (meta or {}).get("conversation_id")
    if isinstance(conv, str) and conv:
        return "sharegpt:" + conv.split("_", 1)[0]
    return rec_id


def split_of(rec_id: str, meta: dict[str, Any] | None = None) -> str:
    """``dev`` or ``test``, a stable half of every source by a hash of the record's group."""
    h = hashlib.blake2b(split_group(rec_id, meta).encode(), digest_size=8, person=b"dg-split").digest()
    return "dev" if h[0] & 1 == 0 else "test"


_TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("code", re.compile(r"```|\bdef \b|\bfunction\b|\bpython\b|\bjavascript\b|\bsql\b|\bcode\b|\bclass \w|"
                        r"\bjava\b|\breact\b|\bapi\b|\berror\b", re.IGNORECASE)),
    ("math", re.compile(r"\bcalculate\b|\bequation\b|\bprobability\b|\bsolve\b|\d+\s*[\*/+\-]\s*\d+|\bmath", re.IGNORECASE)),
    ("business", re.compile(r"\bmarketing\b|\bbusiness\b|\bcustomer|\bsales\b|\bstartup\b|\bemail\b|\bproduct\b|"
                            r"\bcompany\b|\bbrand\b", re.IGNORECASE)),
    ("writing", re.compile(r"\bwrite\b|\bstory\b|\bpoem\b|\bessay\b|\bblog\b|\barticle\b|\brewrite\b|\bletter\b",
                           re.IGNORECASE)),
    ("learning", re.compile(r"\bexplain\b|\bwhat is\b|\bhow does\b|\bwhy\b|\bdifference between\b", re.IGNORECASE)),
)


def topic_of(text: str) -> str:
    head = text[:300]
    for name, pat in _TOPICS:
        if pat.search(head):
            return name
    return "other"


def _pool_names(source: str) -> tuple[str, ...]:
    s = source.lower()
    if "sharegpt" in s or "glaive" in s:
        return ("chat",)
    if "alpaca_eval" in s:
        return ("alpaca_eval", "chat_single")
    if "grade-school-math" in s or "gsm8k" in s:
        return ("gsm8k",)
    if "human-eval" in s or "humaneval" in s:
        return ("humaneval",)
    if "mt_bench" in s:
        return ("mt_bench",)
    if "vicuna_bench" in s:
        return ("vicuna_bench",)
    if "codegen" in s or "codealpaca" in s:
        return ("code",)
    if "toolformer" in s:
        return ("tool",)
    if "seed_tasks" in s:
        return ("seed", "instruct")
    if "alpaca" in s or "instructionwild" in s:
        return ("instruct",)
    return ("instruct",)


def _read(path: Path) -> Iterator[dict[str, Any]]:
    return read_objects(path)


class SimCorpus:
    """Prompt pools of one split of a corpus (``None`` = the compact corpus shipped in the package)."""

    def __init__(self, corpus_dir: Path | None, split: Split = "test") -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        self.corpus_dir = corpus_dir
        self.split = split
        pools: dict[str, list[Item]] = {}
        for path in corpus_files(corpus_dir):
            for obj in _read(path):
                if split != "all" and split_of(str(obj.get("id", "")), obj.get("meta")) != split:
                    continue
                item = _item(obj)
                if item is None:
                    continue
                for name in _pool_names(item.source):
                    pools.setdefault(name, []).append(item)
        self.pools: dict[str, tuple[Item, ...]] = {k: tuple(v) for k, v in pools.items()}
        docs = [it.answer_text() for name in ("chat", "tool", "instruct", "alpaca_eval") for it in
                self.pools.get(name, ()) if 400 <= len(it.answer_text()) <= 5000]
        self.docs: tuple[str, ...] = tuple(docs)
        self.generation_prompts = self._generation_prompts(corpus_dir)
        self._topics: dict[str, dict[str, tuple[Item, ...]]] = {}

    @staticmethod
    def _generation_prompts(corpus_dir: Path | None) -> tuple[str, ...]:
        if corpus_dir is not None:
            found = sorted(Path(corpus_dir).rglob("generation_prompts.jsonl*"))
            texts = [str(o["text"]) for p in found for o in _read(p) if o.get("text")]
            if texts:
                return tuple(texts)
        return (FALLBACK_GENERATION_PROMPT,)

    def pool(self, *names: str) -> tuple[Item, ...]:
        """The concatenation of the named pools (in the given order)."""
        out: list[Item] = []
        for n in names:
            out.extend(self.pools.get(n, ()))
        return tuple(out)

    @property
    def user_pools(self) -> tuple[str, ...]:
        """Pools of real end-user messages: ShareGPT/glaive, plus AlpacaEval prompts when those are few
        (the compact corpus ships no ShareGPT)."""
        return ("chat",) if len(self.pools.get("chat", ())) >= 1000 else ("chat", "chat_single")

    def by_topic(self, *names: str) -> dict[str, tuple[Item, ...]]:
        """The named pools grouped by coarse topic (cached)."""
        key = "\x00".join(names)
        hit = self._topics.get(key)
        if hit is None:
            groups: dict[str, list[Item]] = {}
            for it in self.pool(*names):
                groups.setdefault(it.topic, []).append(it)
            hit = self._topics[key] = {k: tuple(v) for k, v in sorted(groups.items())}
        return hit

    def has(self, name: str) -> bool:
        return bool(self.pools.get(name))

    def ids(self) -> set[str]:
        return {it.id for items in self.pools.values() for it in items}


def _item(obj: dict[str, Any]) -> Item | None:
    msgs = obj.get("messages")
    if not isinstance(msgs, list):
        return None
    turns = tuple({"role": str(m.get("role", "user")), "content": content_text(m.get("content"))}
                  for m in msgs if isinstance(m, dict))
    if not any(m["role"] == "user" and m["content"].strip() for m in turns):
        return None
    source = str(obj.get("source", ""))
    topic = ""
    if any(n.startswith("chat") for n in _pool_names(source)):  # only chat pools are drawn by topic
        topic = topic_of(next(m["content"] for m in turns if m["role"] == "user" and m["content"].strip()))
    return Item(id=str(obj.get("id", "")), source=source, lang=str(obj.get("lang", "")), messages=turns,
                topic=topic)
