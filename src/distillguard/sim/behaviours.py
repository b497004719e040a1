"""Tenant kinds → behaviours. A kind names what a tenant does; its label is in the spec (hidden)."""

from __future__ import annotations

from collections.abc import Callable

from . import benign, distill, evals
from .tenant import Behaviour, Tenant, merge


def _mixed(t: Tenant) -> Behaviour:
    """A benign chat account that also harvests: ``share`` of its requests (default 5%)."""
    n = t.spec.requests
    share = float(t.spec.param("share", 0.05))
    k = max(1, round(n * share))
    styles = tuple(t.spec.param("styles") or ("stepbystep", "alpaca", "grid"))
    return merge(benign.chat_product(t, n - k), distill.harvest(t, k, styles=styles, timing="diurnal"))


BEHAVIOURS: dict[str, Callable[[Tenant], Behaviour]] = {
    # benign
    "chat": lambda t: benign.chat_product(t, t.spec.requests),
    "coding": lambda t: benign.coding_assistant(t, t.spec.requests),
    "rag": lambda t: benign.rag_app(t, t.spec.requests),
    "batch": lambda t: benign.batch_job(t, t.spec.requests),
    "finetune": lambda t: benign.finetune_customer(t, t.spec.requests),
    # distillation
    "harvest": lambda t: distill.harvest(t, t.spec.requests),
    "drip": lambda t: distill.harvest(t, t.spec.requests, timing="drip"),
    "ring": lambda t: distill.harvest(t, t.spec.requests, timing="window"),
    "humanlike": lambda t: distill.harvest(t, t.spec.requests, timing="human"),
    "mixed": _mixed,
    # evaluation
    "eval": lambda t: evals.eval_runs(t, t.spec.requests),
}


def behaviour(t: Tenant) -> Behaviour:
    try:
        fn = BEHAVIOURS[t.spec.kind]
    except KeyError:
        raise ValueError(f"unknown tenant kind {t.spec.kind!r}") from None
    return fn(t)
