"""Comma-separated choices on the command line of the evaluation scripts (``python -m ...``)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable


def comma_list(ap: argparse.ArgumentParser, value: str, allowed: Iterable[str], what: str) -> list[str]:
    """The names in ``value`` (comma-separated), in order; exits through ``ap.error`` naming any not ``allowed``."""
    names = [v for v in value.split(",") if v]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        ap.error(f"unknown {what}(s): {', '.join(unknown)}")
    return names
