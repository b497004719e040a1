"""Ledger → traffic records (contracts §1), one JSON document per line, streamed."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any

from .codec import dumps_line
from .store import LedgerStore


def export_jsonl(
    store: LedgerStore,
    out: str | os.PathLike[str] | IO[Any],
    since: float | None = None,
    until: float | None = None,
    org: str | None = None,
    key: str | None = None,
) -> int:
    """Write every matching record (ordered by ts, id) to ``out``; returns how many.

    ``out`` is a path (created or truncated) or an open file, binary or text.
    """
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            return _write(store, f, since, until, org, key)
    return _write(store, out, since, until, org, key)


def _write(
    store: LedgerStore, f: IO[Any], since: float | None, until: float | None, org: str | None, key: str | None
) -> int:
    text = isinstance(f, io.TextIOBase) or "b" not in getattr(f, "mode", "b")
    n = 0
    for rec in store.iter_records(since=since, until=until, org=org, key=key):
        line = dumps_line(rec.to_traffic())
        f.write(line.decode() if text else line)
        n += 1
    f.flush()
    return n
