"""Applying an output mark (the per-account watermark) to answers, non-streaming and streaming.

The pipeline only knows this protocol; ``distillguard.watermark`` implements it. The streamed and
non-streamed texts of the same answer must come out identical, so a stream keeps one incremental
marker per choice and flushes it when that choice finishes.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..upstreams.base import Completion, Endpoint


class StreamMark(Protocol):
    def feed(self, delta: str) -> str: ...

    def flush(self) -> str: ...


class TextMark(Protocol):
    def apply(self, text: str, org_id: str) -> str: ...

    def stream(self, org_id: str) -> StreamMark: ...


def mark_completion(marker: TextMark, comp: Completion, endpoint: Endpoint, org_id: str) -> Completion:
    """Mark every choice's text in the body and in ``comp.texts`` (what the ledger keeps)."""
    texts: list[str] = []
    for choice in comp.body.get("choices") or ():
        if endpoint == "chat":
            msg = choice.get("message") or {}
            if isinstance(msg.get("content"), str):
                msg["content"] = marker.apply(msg["content"], org_id)
            texts.append(msg.get("content") or "")
        elif isinstance(choice.get("text"), str):
            choice["text"] = marker.apply(choice["text"], org_id)
            texts.append(choice["text"])
    if texts:
        comp.texts = texts
    return comp


class StreamMarker:
    """Per-choice incremental marking of stream chunks (mutates the chunks it is given)."""

    def __init__(self, marker: TextMark, endpoint: Endpoint, org_id: str) -> None:
        self.marker, self.endpoint, self.org_id = marker, endpoint, org_id
        self._open: dict[int, StreamMark] = {}

    def chunk(self, chunk: dict[str, Any]) -> None:
        for ch in chunk.get("choices") or ():
            idx = ch.get("index", 0)
            holder = ch.get("delta") if self.endpoint == "chat" else ch
            if not isinstance(holder, dict):
                continue
            piece = holder.get("content" if self.endpoint == "chat" else "text")
            m = self._open.get(idx)
            if m is None and isinstance(piece, str):
                m = self._open[idx] = self.marker.stream(self.org_id)
            out = m.feed(piece) if (m is not None and isinstance(piece, str)) else None
            if ch.get("finish_reason") and m is not None:
                out = (out or "") + m.flush()
                del self._open[idx]
            if out is not None:
                holder["content" if self.endpoint == "chat" else "text"] = out

    def tails(self) -> dict[int, str]:
        """What is still buffered when a stream ends without a finish_reason for some choice."""
        out = {idx: m.flush() for idx, m in self._open.items()}
        self._open.clear()
        return {k: v for k, v in out.items() if v}
