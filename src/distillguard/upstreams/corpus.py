"""The replay corpus: real prompts with the real answers models gave to them.

Records follow the MANIFEST format of ``../shared/data`` (``{id, source, kind, lang, messages, meta?}``).
``load_corpus(None)`` reads the compact corpus shipped in the package; ``load_corpus(dir)`` reads every
``*.jsonl`` / ``*.jsonl.gz`` under a directory (the full corpus on our machines).

A record with turns u1, a1, u2, a2 holds two *answerable points*: ``[u1] → a1`` and ``[u1, a1, u2] → a2``;
``answer_points`` lists them.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import orjson

COMPACT_FILE = "corpus.jsonl.gz"
SKIP_FILES = frozenset({"generation_prompts.jsonl", "generation_prompts.jsonl.gz"})
_PATTERNS = ("*.jsonl", "*.jsonl.gz")


@dataclass(frozen=True, slots=True)
class CorpusRecord:
    id: str
    source: str
    kind: str
    lang: str
    messages: tuple[dict[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "kind": self.kind, "lang": self.lang,
                "messages": [dict(m) for m in self.messages]}


@dataclass(frozen=True, slots=True)
class AnswerPoint:
    """One recorded answer and the conversation that preceded it."""

    record_id: str
    context: tuple[dict[str, str], ...]
    answer: str


def content_text(content: Any) -> str:
    """The text of an OpenAI message ``content`` (a string or a list of content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def compact_corpus_dir() -> Path:
    """The directory holding the compact corpus shipped with the package."""
    return Path(str(resources.files("distillguard") / "data" / "corpus"))


def corpus_files(corpus_dir: Path | None) -> list[Path]:
    """The files a corpus is read from, in a stable order."""
    if corpus_dir is None:
        path = compact_corpus_dir() / COMPACT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"the compact corpus is missing: {path} (run scripts/build_corpus.py)")
        return [path]
    root = Path(corpus_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus directory not found: {root}")
    found = {p for pat in _PATTERNS for p in root.rglob(pat) if p.is_file() and p.name not in SKIP_FILES}
    files = sorted(found, key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise FileNotFoundError(f"no *.jsonl / *.jsonl.gz files under {root}")
    return files


def fingerprint(corpus_dir: Path | None) -> str:
    """A hash of the corpus content (file names and bytes): the replay index cache key."""
    h = hashlib.blake2b(digest_size=16)
    root = None if corpus_dir is None else Path(corpus_dir)
    for path in corpus_files(corpus_dir):
        name = path.name if root is None else path.relative_to(root).as_posix()
        h.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.file_digest(f, "blake2b").digest())
    return h.hexdigest()


def _read_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line


def parse_record(obj: Any) -> CorpusRecord | None:
    """A record in the MANIFEST format, or None if it has no usable answer (prompt-only, malformed)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        return None
    meta = obj.get("meta")
    if isinstance(meta, dict) and meta.get("prompts_only"):
        return None
    msgs = tuple(
        {"role": str(m.get("role", "user")), "content": content_text(m.get("content"))}
        for m in obj["messages"]
        if isinstance(m, dict)
    )
    if not any(m["role"] == "assistant" and m["content"] for m in msgs):
        return None
    return CorpusRecord(
        id=str(obj.get("id", "")),
        source=str(obj.get("source", "")),
        kind=str(obj.get("kind", "")),
        lang=str(obj.get("lang", "")),
        messages=msgs,
    )


def iter_corpus(corpus_dir: Path | None = None) -> Iterator[CorpusRecord]:
    """Records with at least one assistant answer, file by file in a stable order."""
    for path in corpus_files(corpus_dir):
        for line in _read_lines(path):
            try:
                rec = parse_record(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
            if rec is not None:
                yield rec


def load_corpus(corpus_dir: Path | None = None) -> list[CorpusRecord]:
    """None → the shipped compact corpus; a directory → every corpus file under it."""
    return list(iter_corpus(corpus_dir))


def answer_points(record: CorpusRecord) -> Iterator[AnswerPoint]:
    """Every assistant answer of a record that follows at least one user turn."""
    seen_user = False
    for i, msg in enumerate(record.messages):
        if msg["role"] == "user":
            seen_user = True
        elif msg["role"] == "assistant" and seen_user and msg["content"]:
            yield AnswerPoint(record.id, record.messages[:i], msg["content"])
