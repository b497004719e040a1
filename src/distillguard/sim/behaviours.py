"""Tenant kinds → behaviours. A kind names what a tenant does; its label is in the spec (hidden)."""

from __future__ import annotations

import random
from collections.abc import Callable

from . import benign, distill, evals
from .tenant import Behaviour, Tenant, derive_seed, merge


def _mixed(t: Tenant) -> Behaviour:
    """A benign chat account that also harvests: ``share`` of its requests (default 5%)."""
    n = t.spec.requests
    share = float(t.spec.param("share", 0.05))
    k = max(1, round(n * share))
    styles = tuple(t.spec.param("styles") or ("stepbystep", "alpaca", "grid"))
    blend = t.rng.random() < float(t.spec.param("blend", 0.0))
    return merge(benign.chat_product(t, n - k), distill.harvest(t, k, styles=styles, timing="diurnal", blend=blend))


_PRODUCTS = {"chat": benign.chat_product, "coding": benign.coding_assistant, "rag": benign.rag_app}
_SIDE_JOBS = {"batch": benign.batch_job, "finetune": benign.finetune_customer, "eval": evals.eval_runs}


def side_jobs(t: Tenant) -> list[str]:
    """The side programs a ``multi`` tenant runs ([] for other kinds): drawn from a stream of their own, so the
    identity (which declares purposes) can know them before the behaviour starts."""
    if t.spec.kind != "multi":
        return []
    rng = random.Random(derive_seed(t.extra.get("scenario_seed"), "side-jobs", t.index))
    return rng.sample(sorted(_SIDE_JOBS), rng.randint(1, 2))


def builds_finetuning_set(t: Tenant) -> bool:
    """Whether the tenant builds a fine-tuning set for the provider's own models (allowed, and declared)."""
    return t.spec.kind == "finetune" or "finetune" in side_jobs(t)


def _multi(t: Tenant) -> Behaviour:
    """A benign account running a product plus one or two machine-like side programs (a classifier job, building a
    fine-tuning set for the provider's own models, a benchmark run): ``side`` of its requests (default 3–20%)."""
    rng = t.rng
    n = t.spec.requests
    main = _PRODUCTS[t.spec.param("product") or rng.choice(("chat", "chat", "coding", "rag"))]
    jobs = side_jobs(t)
    side = float(t.spec.param("side") or rng.uniform(0.03, 0.2))
    k = max(3, round(n * side / len(jobs)))
    return merge(main(t, max(1, n - k * len(jobs))), *(_SIDE_JOBS[j](t, k) for j in jobs))


BEHAVIOURS: dict[str, Callable[[Tenant], Behaviour]] = {
    # benign
    "chat": lambda t: benign.chat_product(t, t.spec.requests),
    "coding": lambda t: benign.coding_assistant(t, t.spec.requests),
    "rag": lambda t: benign.rag_app(t, t.spec.requests),
    "qa": lambda t: benign.qa_app(t, t.spec.requests),
    "batch": lambda t: benign.batch_job(t, t.spec.requests),
    "finetune": lambda t: benign.finetune_customer(t, t.spec.requests),
    "multi": _multi,
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
