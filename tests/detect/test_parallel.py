"""Sharding accounts across worker processes gives the single-process report."""

from __future__ import annotations

import orjson

from distillguard.detect.engine import Detector
from distillguard.detect.parallel import run_file


def test_two_workers_give_the_same_verdicts_as_one(population, tmp_path):
    recs, _ = population
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    det = Detector()
    one = {a.org: (round(a.score, 9), a.flagged, a.label, a.flagged_after, a.ring is None) for a in det.run(recs).accounts}
    two = {a.org: (round(a.score, 9), a.flagged, a.label, a.flagged_after, a.ring is None)
           for a in run_file(det, path, workers=2).accounts}
    assert one == two and len(one) > 20
