from __future__ import annotations

import random

import pytest

from distillguard.detect.engine import Detector, Report

from . import traffic as T


@pytest.fixture(scope="session")
def population() -> tuple[list[dict], dict[str, str]]:
    """A small mixed population from the shipped corpus (independent of the simulator the model was trained on)."""
    rng = random.Random(42)
    recs: list[dict] = []
    labels: dict[str, str] = {}
    for i in range(6):
        recs += T.chatter(f"chat{i}", 300, rng)
        labels[f"chat{i}"] = "benign"
    for i in range(2):
        recs += T.classifier_job(f"batch{i}", 600, rng)
        labels[f"batch{i}"] = "benign"
    for i in range(2):
        recs += T.harvester(f"harvest{i}", 600, rng)
        labels[f"harvest{i}"] = "distillation"
    for i in range(2):
        recs += T.evaluator(f"eval{i}", 150, rng)
        labels[f"eval{i}"] = "evaluation"
    ring = T.ring("member", 12, 60, rng)
    recs += ring
    for r in ring:
        labels[r["org"]] = "distillation"
    recs.sort(key=lambda r: r["ts"])
    return recs, labels


@pytest.fixture(scope="session")
def report(population) -> Report:
    return Detector().run(population[0])
