"""Reading suspect training sets: JSONL, JSON, CSV and Parquet, in the common training formats.

Recognised record shapes (auto-detected per record):

- Alpaca: ``{"instruction", "input"?, "output"}``
- ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|..., "value"}]}``
- OpenAI messages: ``{"messages": [{"role", "content"}]}``
- prompt/completion: ``{"prompt", "completion"|"response"|"answer"}``
- plain text: ``{"text"}`` (or a column named text/content)

Each record becomes a :class:`DatasetRecord` with its (prompt, answer) pairs: one pair per assistant turn.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_FORMATS = ("jsonl", "json", "csv", "parquet")
_ASSISTANT = {"gpt", "assistant", "model", "chatgpt", "bing", "bard", "gpt-4", "gpt4"}
_USER = {"human", "user", "prompter"}
_ANSWER_KEYS = ("output", "completion", "response", "answer", "target", "chosen")
_PROMPT_KEYS = ("instruction", "prompt", "question", "query", "input")
_TEXT_KEYS = ("text", "content", "body")


class DatasetFormatError(ValueError):
    """The file or a record is in no format we can read."""


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    index: int
    pairs: tuple[tuple[str, str], ...]  # (prompt, answer) per assistant turn; prompt may be ""
    format: str = ""

    @property
    def prompt(self) -> str:
        return "\n".join(p for p, _ in self.pairs if p)

    @property
    def answer(self) -> str:
        return "\n".join(a for _, a in self.pairs if a)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in v)
    return str(v)


def _turns(turns: list[Any], role_key: str, text_key: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    prompt: list[str] = []
    for t in turns:
        if not isinstance(t, dict):
            continue
        role = str(t.get(role_key, "")).lower()
        text = _text(t.get(text_key))
        if role in _ASSISTANT:
            if text:
                pairs.append(("\n".join(prompt), text))
            prompt = []
        elif role in _USER:
            prompt.append(text)
    return tuple(pairs)


def parse_record(obj: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(format name, pairs) of one record; raises DatasetFormatError when unrecognised."""
    if not isinstance(obj, dict):
        if isinstance(obj, str):
            return "text", (("", obj),)
        raise DatasetFormatError(f"record is a {type(obj).__name__}, not an object")
    if isinstance(obj.get("conversations"), list):
        return "sharegpt", _turns(obj["conversations"], "from", "value")
    if isinstance(obj.get("messages"), list):
        return "openai", _turns(obj["messages"], "role", "content")
    if "instruction" in obj and "output" in obj:
        prompt = "\n".join(x for x in (_text(obj.get("instruction")), _text(obj.get("input"))) if x)
        return "alpaca", ((prompt, _text(obj["output"])),)
    for a in _ANSWER_KEYS:
        if a in obj:
            prompt = next((_text(obj[p]) for p in _PROMPT_KEYS if p in obj), "")
            return "prompt_completion", ((prompt, _text(obj[a])),)
    for t in _TEXT_KEYS:
        if isinstance(obj.get(t), str):
            return "text", (("", obj[t]),)
    raise DatasetFormatError(
        f"unrecognised record with keys {sorted(obj)[:8]}: expected Alpaca (instruction/output), "
        "ShareGPT (conversations), OpenAI (messages), prompt/completion or text"
    )


def detect_file_format(path: Path) -> str:
    """jsonl/json/csv/parquet from the extension, else from the first bytes."""
    name = path.name.lower().removesuffix(".gz")
    for ext in FILE_FORMATS:
        if name.endswith("." + ext):
            return ext
    if name.endswith(".ndjson"):
        return "jsonl"
    head = _open(path).read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        first = stripped.split(b"\n", 1)[0]
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            return "json"
    raise DatasetFormatError(f"{path}: cannot tell the file format (use .jsonl, .json, .csv or .parquet)")


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _iter_objects(path: Path, fmt: str) -> Iterator[Any]:
    if fmt == "jsonl":
        with _open(path) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as e:
                        raise DatasetFormatError(f"{path}:{n}: not JSON ({e})") from e
    elif fmt == "json":
        with _open(path) as f:
            try:
                data = json.load(f)
            except ValueError as e:
                raise DatasetFormatError(f"{path}: not JSON ({e})") from e
        if isinstance(data, dict):
            data = next((data[k] for k in ("data", "records", "examples", "rows") if isinstance(data.get(k), list)), None)
        if not isinstance(data, list):
            raise DatasetFormatError(f"{path}: JSON must be an array of records or {{\"data\": [...]}}")
        yield from data
    elif fmt == "csv":
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
            csv.field_size_limit(1 << 30)
            for row in csv.DictReader(f):
                yield _decode_cells(row)
    elif fmt == "parquet":
        yield from _iter_parquet(path)
    else:
        raise DatasetFormatError(f"unsupported file format {fmt!r}")


def _decode_cells(row: dict[str, Any]) -> dict[str, Any]:
    """CSV cells holding JSON lists (conversations/messages) are decoded."""
    out = {}
    for k, v in row.items():
        if k is None:
            continue
        if isinstance(v, str) and v[:1] == "[" and k in ("conversations", "messages"):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return out


def _iter_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DatasetFormatError("reading Parquet needs pyarrow: pip install pyarrow") from e
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=4096):
        yield from (_decode_cells(r) for r in batch.to_pylist())


def read_dataset(path: str | Path, file_format: str | None = None) -> Iterator[DatasetRecord]:
    """The records of a dataset file, in order; raises DatasetFormatError on anything unreadable."""
    p = Path(path)
    if not p.is_file():
        raise DatasetFormatError(f"dataset not found: {p}")
    fmt = file_format or detect_file_format(p)
    if fmt not in FILE_FORMATS:
        raise DatasetFormatError(f"unsupported file format {fmt!r} (one of {', '.join(FILE_FORMATS)})")
    for i, obj in enumerate(_iter_objects(p, fmt)):
        try:
            kind, pairs = parse_record(obj)
        except DatasetFormatError as e:
            raise DatasetFormatError(f"{p}: record {i}: {e}") from None
        yield DatasetRecord(i, pairs, kind)
