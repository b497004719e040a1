"""Offline generation: a scenario and a seed → traffic records (contracts §1) and labels, byte for byte.

Every tenant runs independently from its own random streams (derived from scenario, seed, split and
its index), so the output does not depend on the number of worker processes: workers write sorted
runs to temporary files and the parent merges them by (ts, id).
"""

from __future__ import annotations

import heapq
import multiprocessing as mp
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ..detect.declared import FINE_TUNING
from . import identity
from .answers import Answerer
from .behaviours import behaviour, builds_finetuning_set
from .corpus import SimCorpus, Split
from .scenarios import Scenario
from .tenant import Reply, Req, Tenant, derive_seed, make_identity

# Share of distillers whose application also declares fine-tuning (a cover story: the traffic looks the same).
COVER_STORY = 0.3
TIMEZONES = (-8.0, -7.0, -5.0, -3.0, 0.0, 1.0, 2.0, 3.0, 5.5, 8.0, 9.0)
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Summary:
    scenario: str
    seed: int
    split: str
    records: int = 0
    accounts: int = 0
    by_label: dict[str, int] = field(default_factory=dict)  # requests per label
    accounts_by_label: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    answers_exact: int = 0
    answers_replayed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def build_tenants(scenario: Scenario, seed: int, corpus: SimCorpus) -> list[tuple[str, Tenant]]:
    """(tag, tenant) for every tenant of the scenario, identities included."""
    out = []
    ring_blocks: dict[str, tuple[int, int] | None] = {}
    for i, (tag, spec) in enumerate(scenario.specs(seed)):
        rng = random.Random(derive_seed(scenario.name, seed, corpus.split, "tenant", i))
        block = None
        if spec.ring is not None and not spec.param("residential", False):
            if spec.ring not in ring_blocks:
                rr = random.Random(derive_seed(scenario.name, seed, corpus.split, "ring-net", spec.ring))
                ring_blocks[spec.ring] = identity.block16(rr) if rr.random() < 0.5 else None
            block = ring_blocks[spec.ring]
        ident = make_identity(rng, spec, block)
        t = Tenant(index=i, spec=spec, ident=ident, rng=rng, corpus=corpus, t0=scenario.t0, t1=scenario.t1,
                   tz_hours=rng.choice(TIMEZONES),
                   extra={"scenario_seed": derive_seed(scenario.name, seed, corpus.split)})
        declare(t)
        out.append((tag, t))
    return out


def declare(t: Tenant) -> None:
    """Make the tenant's declared purposes follow what it does: everyone building a fine-tuning set for the
    provider's own models declares it (the provider's terms ask for that); a share of distillers claim it too."""
    rng = random.Random(derive_seed(t.extra.get("scenario_seed"), "declare", t.index))
    cover = t.spec.label == "distillation" and rng.random() < COVER_STORY
    if (builds_finetuning_set(t) or cover) and FINE_TUNING not in t.ident.purposes:
        t.ident.purposes = [*t.ident.purposes, FINE_TUNING]


def label_of(tag: str, t: Tenant, scenario: str) -> dict[str, Any]:
    """The labels-file line of a tenant (contracts §1, plus ``kind`` and ``scenario`` for per-class metrics, and the
    purposes its application declared, which ``detect --declarations`` reads)."""
    return {"org": t.ident.org, "label": t.spec.label, "ring": t.spec.ring, "kind": tag, "scenario": scenario,
            "purposes": list(t.ident.purposes)}


def simulated_latency(rng: random.Random, prompt_tokens: int, completion_tokens: int) -> float:
    """Seconds a replayed answer would take: time to first token plus decoding."""
    ttft = 0.18 + prompt_tokens * 0.00004
    return (ttft + completion_tokens * 0.011) * rng.lognormvariate(0, 0.25)


def run_tenant(t: Tenant, answerer: Answerer) -> Iterator[dict[str, Any]]:
    """Drive one tenant's behaviour against the replay answers; yields its traffic records."""
    io_rng = random.Random(derive_seed(t.extra.get("scenario_seed"), "io", t.index))
    gen = behaviour(t)
    ident = t.ident
    try:
        req: Req = next(gen)
        while True:
            ans = answerer.answer(req.endpoint, req.body)
            lat = simulated_latency(io_rng, ans.prompt_tokens, ans.completion_tokens)
            k = req.key % len(ident.keys)
            ts = round(req.ts, 3)
            yield {
                "id": identity.request_id(ts, io_rng), "ts": ts, "org": ident.org,
                "key": ident.keys[k], "project": ident.project, "endpoint": req.endpoint,
                "ip": ident.ips[k % len(ident.ips)], "user_agent": ident.user_agents[k], "request": req.body,
                "response": {"status": 200, "text": ans.text, "finish_reason": ans.finish_reasons[0]
                             if ans.finish_reasons else None},
                "usage": {"prompt_tokens": ans.prompt_tokens, "completion_tokens": ans.completion_tokens},
                "latency_ms": round(lat * 1000.0, 1),
            }
            req = gen.send(Reply(200, ans.text, lat))
    except StopIteration:
        return


def _sort_key(rec: dict[str, Any]) -> bytes:
    return b"%017.3f %s\t" % (rec["ts"], rec["id"].encode())


_WORK: dict[str, Any] = {}  # set in the parent before forking workers


def _run_chunk(indices: list[int], tmpdir: str) -> tuple[str, int, int, int]:
    """Worker: run some tenants, write their records sorted (with a sort-key prefix) to a temp file."""
    tenants: list[tuple[str, Tenant]] = _WORK["tenants"]
    answerer = Answerer(_WORK["corpus_dir"], _WORK["cache_dir"])
    lines: list[bytes] = []
    for i in indices:
        for rec in run_tenant(tenants[i][1], answerer):
            lines.append(_sort_key(rec) + orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
    lines.sort()
    fd, path = tempfile.mkstemp(dir=tmpdir, suffix=".run")
    with os.fdopen(fd, "wb") as f:
        f.writelines(lines)
    answerer.close()
    return path, len(lines), answerer.fast, answerer.slow


def _chunks(tenants: list[tuple[str, Tenant]], parts: int) -> list[list[int]]:
    """Tenant indices in balanced chunks (by planned requests), several per worker for load balancing."""
    order = sorted(range(len(tenants)), key=lambda i: -tenants[i][1].spec.requests)
    bins: list[list[int]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for i in order:
        j = loads.index(min(loads))
        bins[j].append(i)
        loads[j] += tenants[i][1].spec.requests
    return [sorted(b) for b in bins if b]


def generate(scenario: Scenario, seed: int, out: IO[bytes], labels: IO[bytes], *, split: Split = "test",
             corpus_dir: Path | None = None, cache_dir: Path | None = None, workers: int | None = None,
             corpus: SimCorpus | None = None, progress: Progress | None = None) -> Summary:
    """Write the scenario's traffic (sorted by ts, id) to ``out`` and its labels to ``labels``.

    ``corpus`` (pools already loaded) takes precedence over ``corpus_dir`` and ``split``; ``cache_dir``
    holds the replay index (the gateway uses ``DG_HOME/cache``). ``workers`` only changes the speed.
    """
    started = time.perf_counter()
    if corpus is None:
        corpus = SimCorpus(corpus_dir, split)
    corpus_dir = corpus.corpus_dir  # answers come from the corpus the prompts come from
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "distillguard-cache"
    tenants = build_tenants(scenario, seed, corpus)
    planned = sum(t.spec.requests for _, t in tenants)
    if workers is None:
        workers = 1 if planned < 20_000 else max(1, min(os.cpu_count() or 1, 8))
    if "fork" not in mp.get_all_start_methods():
        workers = 1
    answerer0 = Answerer(corpus_dir, cache)
    _ = answerer0.replay.index  # build or load the replay index once, before forking
    summary = Summary(scenario.name, seed, corpus.split)
    chunks = _chunks(tenants, max(1, workers * 4))
    _WORK.update(tenants=tenants, corpus_dir=corpus_dir, cache_dir=cache)
    with tempfile.TemporaryDirectory(prefix="dg-sim-") as tmp:
        paths: list[str] = []
        done = 0
        if workers == 1:
            for c in chunks:
                path, n, fast, slow = _run_chunk(c, tmp)
                paths.append(path)
                summary.answers_exact += fast
                summary.answers_replayed += slow
                done += len(c)
                if progress:
                    progress(done, len(tenants))
        else:
            ctx = mp.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                futs = {pool.submit(_run_chunk, c, tmp): len(c) for c in chunks}
                for fut in as_completed(futs):
                    path, n, fast, slow = fut.result()
                    paths.append(path)
                    summary.answers_exact += fast
                    summary.answers_replayed += slow
                    done += futs[fut]
                    if progress:
                        progress(done, len(tenants))
        _WORK.clear()
        seen_orgs: dict[str, int] = {}
        with ExitStack() as stack:
            files = [stack.enter_context(open(p, "rb")) for p in sorted(paths)]
            for line in heapq.merge(*files):
                body = line[line.index(b"\t") + 1:]
                out.write(body)
                summary.records += 1
                org = _org_of(body)
                seen_orgs[org] = seen_orgs.get(org, 0) + 1
    for tag, t in tenants:
        n = seen_orgs.get(t.ident.org, 0)
        if n == 0:
            continue
        labels.write(orjson.dumps(label_of(tag, t, scenario.name), option=orjson.OPT_APPEND_NEWLINE))
        summary.accounts += 1
        summary.by_label[t.spec.label] = summary.by_label.get(t.spec.label, 0) + n
        summary.accounts_by_label[t.spec.label] = summary.accounts_by_label.get(t.spec.label, 0) + 1
    answerer0.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _org_of(line: bytes) -> str:
    """The org of a record line, without parsing it (records start with id, ts, org)."""
    i = line.index(b'"org":"') + 7
    return line[i:line.index(b'"', i)].decode()
