"""Known public benchmarks: does a prompt contain benchmark text (GSM8K, HumanEval, MT-bench, AlpacaEval ...)?

The index is the set of hashed word 8-gram shingles of every ``eval`` prompt of a corpus (by default the compact
corpus shipped with the package). A request is checked at five shingle positions only, so the lookup costs a few
hashes; wrappers such as "Question: ... Answer:" or few-shot prefixes do not hide the benchmark text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .speedups import native

SHINGLE = 8
_WORD = re.compile(r"\w+")
# ASCII text: ``\w`` is [A-Za-z0-9_], so mapping every other byte to a space (and capitals to lower case) and
# splitting gives the same words as ``_WORD.findall(text.lower())``, at about half the cost.
_ASCII_WORDS = bytes(b if chr(b).isalnum() or b == ord("_") else ord(" ") for b in range(128)).lower() + bytes(128)


def _shingles(words: list[str]) -> Iterable[int]:
    for i in range(len(words) - SHINGLE + 1):
        yield zlib.crc32(" ".join(words[i : i + SHINGLE]).encode())


class BenchmarkIndex:
    """Hashed shingles of benchmark prompts."""

    def __init__(self, prompts: Iterable[str] = ()) -> None:
        self._set: set[int] = set()
        self.prompts = 0
        for p in prompts:
            self.add(p)

    def add(self, prompt: str) -> None:
        self._set.update(_shingles(_WORD.findall(prompt.lower())))
        self.prompts += 1

    def __len__(self) -> int:
        return len(self._set)

    def overlap(self, prompt: str) -> float:
        """Benchmark evidence in [0, 1]: five probe shingles spread over the prompt's first 1,000 chars; two hits = 1."""
        if not self._set:
            return 0.0
        head = prompt[:1000]
        if head.isascii():
            data = head.encode().translate(_ASCII_WORDS)
            if native is not None:
                hits = native.shingle_hits(data, self._set, SHINGLE)
                return 0.0 if hits < 0 else min(1.0, hits / 2)
            b = data.split()
            m = len(b) - SHINGLE
            if m < 0:
                return 0.0
            shingles = self._set
            hits = 0
            for i in {0, m // 4, m // 2, 3 * m // 4, m}:
                if zlib.crc32(b" ".join(b[i : i + SHINGLE])) in shingles:
                    hits += 1
        else:
            w = _WORD.findall(head.lower())
            m = len(w) - SHINGLE
            if m < 0:
                return 0.0
            pos = {0, m // 4, m // 2, 3 * m // 4, m}
            hits = sum(1 for i in pos if zlib.crc32(" ".join(w[i : i + SHINGLE]).encode()) in self._set)
        return min(1.0, hits / 2)


def _eval_prompts(corpus_dir: Path | None) -> Iterable[str]:
    from ..upstreams.corpus import iter_corpus

    for rec in iter_corpus(corpus_dir):
        if rec.kind != "eval":
            continue
        for m in rec.messages:
            if m["role"] == "user" and m["content"]:
                yield m["content"]


@lru_cache(maxsize=4)
def default_index(corpus_dir: str | None = None) -> BenchmarkIndex:
    """The benchmark index of the shipped compact corpus (or of a corpus directory), built once per process."""
    try:
        return BenchmarkIndex(_eval_prompts(Path(corpus_dir) if corpus_dir else None))
    except FileNotFoundError:
        return BenchmarkIndex()
