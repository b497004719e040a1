"""Declared purposes: what an org said, in its Limited Access application, it uses the outputs for.

The terms allow one kind of output harvesting: building a fine-tuning set for the provider's *own* models. In the
request stream it is distillation (one template, whole answers, single-shot prompts, often a temperature sweep), and
no traffic feature tells the two apart (docs/adr/0007-detection.md). What tells them apart is outside the traffic:
the provider asks such customers to declare ``fine-tuning`` and sees the data come back as fine-tuning uploads.

So the detector scores a declared account like any other (a declaration is free to make, and a distiller may claim
it as cover), but the thresholds are calibrated on the benign accounts that declared no fine-tuning, and a flag on a
declared account says so: the reviewer's question is then whether the flagged outputs went into fine-tuning jobs on
the provider's platform. The evaluation reports declared benign accounts flagged as their own column, never mixed
into the false-positive rate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .engine import Report

FINE_TUNING = "fine-tuning"
_FINE_TUNING = re.compile(r"^fine[\s_-]*tun(e|es|ed|ing)$", re.IGNORECASE)
REVIEW = ("declared purpose 'fine-tuning' (allowed only for the provider's own models): check whether the flagged "
          "outputs went into fine-tuning uploads on this platform before acting")


def declares_fine_tuning(purposes: Iterable[str] | None) -> bool:
    """Whether a list of declared purposes includes fine-tuning (``fine-tuning``, ``fine tuning``, ``finetune``...)."""
    return any(_FINE_TUNING.match(str(p).strip()) for p in purposes or ())


def declared_of(label: Mapping[str, Any]) -> bool:
    """Whether a labels-file or declarations-file line declares fine-tuning (its ``purposes`` field)."""
    return declares_fine_tuning(label.get("purposes"))


def read_declarations(path: str | Path) -> dict[str, list[str]]:
    """``{org: purposes}`` from a JSONL file of ``{"org": ..., "purposes": [...]}`` lines (a simulator labels file
    has both fields, an export of the orgs table too). A line without ``org`` or with ``purposes`` that is not a list
    of strings is an error naming the line."""
    out: dict[str, list[str]] = {}
    with open(path, "rb") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not JSON ({e})") from None
            purposes = d.get("purposes", []) if isinstance(d, dict) else None
            if not isinstance(d, dict) or not isinstance(d.get("org"), str):
                raise ValueError(f"{path}:{i}: a declaration needs an \"org\" string")
            if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
                raise ValueError(f"{path}:{i}: \"purposes\" must be a list of strings")
            out[d["org"]] = purposes
    return out


def annotate(report: Report, declarations: Mapping[str, list[str]]) -> int:
    """Give each account of ``report`` its declared purposes (accounts of orgs not in ``declarations``: none known)
    and put the review question first among the reasons of flagged accounts that declared fine-tuning. The score and
    the flag do not change. Returns the number of flagged accounts that declared fine-tuning."""
    n = 0
    for a in report.accounts:
        purposes = declarations.get(a.org)
        if purposes is None:
            continue
        a.purposes = list(purposes)
        if a.flagged and declares_fine_tuning(purposes):
            a.reasons.insert(0, REVIEW)
            n += 1
    return n


def mark_signal(signal: dict[str, Any], purposes: list[str]) -> dict[str, Any]:
    """The online detector's signal of an org (``online.signals``) with the org's declared purposes, and the review
    question first among its reasons when it is flagged and declared fine-tuning (as ``annotate``)."""
    out = dict(signal, purposes=list(purposes))
    if out.get("flagged") and declares_fine_tuning(purposes):
        out["reasons"] = [REVIEW, *out.get("reasons", [])]
    return out
