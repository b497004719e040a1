"""Declared purposes: what an org said, in its Limited Access application, it uses the outputs for.

The terms allow one kind of output harvesting: building a fine-tuning set for the provider's *own* models. In the
request stream it is distillation (one template, whole answers, single-shot prompts, often a temperature sweep), and
no traffic feature tells the two apart (docs/adr/0007-detection.md). What tells them apart is outside the traffic:
the provider asks such customers to declare ``fine-tuning`` and sees the data come back as fine-tuning uploads.

So the detector scores a declared account like any other (a declaration is free to make, and a distiller may claim
it as cover), but the thresholds are calibrated on the benign accounts that declared no fine-tuning, and a flag on a
declared account says so: the reviewer's question is then whether the flagged outputs went into fine-tuning jobs on
the provider's platform. A declaration covers one org's own use, not a ring: a flagged ring member that declared
fine-tuning, in a ring with flagged members that did not, is not sent to the uploads check. The evaluation reports
declared benign accounts flagged as their own column, never mixed into the false-positive rate.
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
RING_UNCOVERED = ("declared purpose 'fine-tuning', but {ring} also has {n} flagged member(s) that did not declare it: "
                  "the declaration does not cover the ring")
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


def annotate(report: Report, declarations: Mapping[str, list[str]]) -> set[str]:
    """Give each account of ``report`` its declared purposes (accounts of orgs not in ``declarations``: none known)
    and put the review question first among the reasons of flagged accounts that declared fine-tuning. A declaration
    covers one org's own use: a flagged ring member whose ring also has flagged members that did not declare
    fine-tuning gets ``RING_UNCOVERED`` instead (one operator behind the scaffold, and the claim does not explain the
    others). The score and the flag do not change. Returns the orgs to check against their uploads before acting."""
    def declared(org: str) -> bool:
        return declares_fine_tuning(declarations.get(org))

    uncovered: dict[str, int] = {}  # ring -> its flagged members that did not declare fine-tuning
    for a in report.accounts:
        if a.flagged and a.ring and not declared(a.org):
            uncovered[a.ring] = uncovered.get(a.ring, 0) + 1
    check: set[str] = set()
    for a in report.accounts:
        purposes = declarations.get(a.org)
        if purposes is None:
            continue
        a.purposes = list(purposes)
        if not (a.flagged and declares_fine_tuning(purposes)):
            continue
        if a.ring and uncovered.get(a.ring):
            a.reasons.insert(0, RING_UNCOVERED.format(ring=a.ring, n=uncovered[a.ring]))
        else:
            a.reasons.insert(0, REVIEW)
            check.add(a.org)
    return check


def mark_signal(signal: dict[str, Any], purposes: list[str], uncovered: int = 0) -> dict[str, Any]:
    """The online detector's signal of an org (``online.signals``) with the org's declared purposes, and the review
    question first among its reasons when it is flagged and declared fine-tuning (as ``annotate``); ``uncovered``:
    the flagged members of the signal's ring that did not declare fine-tuning (then ``RING_UNCOVERED`` instead)."""
    out = dict(signal, purposes=list(purposes))
    if out.get("flagged") and declares_fine_tuning(purposes):
        first = RING_UNCOVERED.format(ring=out.get("ring"), n=uncovered) if uncovered and out.get("ring") else REVIEW
        out["reasons"] = [first, *out.get("reasons", [])]
    return out
