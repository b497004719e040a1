"""Reading JSON Lines files (plain or gzip'd, or stdin as ``-``): one object per line, bad lines skipped."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


def read_objects(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every JSON object of the file, in order; blank lines, invalid JSON and non-objects are skipped."""
    p = Path(path)
    opener: Any = gzip.open if p.name.endswith(".gz") else open
    with (sys.stdin.buffer if str(path) == "-" else opener(p, "rb")) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield obj
