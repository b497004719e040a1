"""Simulator fixtures: one compact-corpus run of mixed-small per session (the replay index cached once)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.sim import scenarios
from distillguard.sim.corpus import SimCorpus
from distillguard.sim.generate import Summary, generate


@dataclass
class Run:
    traffic: bytes
    labels_bytes: bytes
    summary: Summary

    @property
    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in self.traffic.splitlines()]

    @property
    def labels(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in self.labels_bytes.splitlines()]


def run_scenario(name: str, seed: int, cache: Path, workers: int = 1, split: str = "test",
                 corpus: SimCorpus | None = None) -> Run:
    out, lab = io.BytesIO(), io.BytesIO()
    s = generate(scenarios.get(name), seed, out, lab, split=split, cache_dir=cache, workers=workers,  # type: ignore[arg-type]
                 corpus=corpus)
    return Run(out.getvalue(), lab.getvalue(), s)


@pytest.fixture(scope="session")
def sim_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-cache")


@pytest.fixture(scope="session")
def test_corpus() -> SimCorpus:
    return SimCorpus(None, "test")


@pytest.fixture(scope="session")
def small_run(sim_cache: Path, test_corpus: SimCorpus) -> Run:
    return run_scenario("mixed-small", 7, sim_cache, workers=1, corpus=test_corpus)
