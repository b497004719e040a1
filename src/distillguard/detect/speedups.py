"""The compiled loops of feature extraction (``_speedups.pyx``), when they are built and current.

``pip install`` builds the extension where a C compiler is found (``setup.py`` marks it optional); without it,
``speedups.native`` is None and each caller runs its pure-Python code, which defines the result (the compiled
functions are checked against it in tests/detect/test_speedups.py). In a source checkout, an extension older than
its ``.pyx`` is not used (a warning says to re-run ``scripts/setup``): a stale build must not silently compute
something else. ``DISTILLGUARD_NO_SPEEDUPS=1`` turns the extension off.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("DISTILLGUARD_NO_SPEEDUPS"):
        return None
    try:
        from . import _speedups as mod  # type: ignore[attr-defined]
    except ImportError:
        return None
    built = Path(mod.__file__ or "")
    source = built.with_name("_speedups.pyx")
    try:
        stale = source.exists() and source.stat().st_mtime > built.stat().st_mtime
    except OSError:
        stale = False
    if stale:
        warnings.warn(f"{built.name} is older than {source.name}: not used; rebuild it (scripts/setup)",
                      RuntimeWarning, stacklevel=2)
        return None
    return mod


native: ModuleType | None = _load()
