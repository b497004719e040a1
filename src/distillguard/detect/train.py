"""Train and calibrate the scorer on labelled DEV traffic, and write ``detect/model.json``.

    python -m distillguard.detect.train --traffic dev.jsonl --labels dev_labels.jsonl [--out model.json]
    python -m distillguard.detect.train --simulate standard,evasive,sybil --seed 1   # DEV split of the simulator

Each account contributes its feature vectors at every checkpoint (so the model sees small and large windows); the
threshold calibration data are the scores the batch detector gives the *benign* dev accounts. Never train on the
split you report numbers from.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from .account import AccountState
from .bench import default_index
from .engine import CHECKPOINTS, Detector
from .features import extract
from .model import CLASSES, MODEL_FILE, ScoringModel, fit


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def read_labels(path: str | Path) -> dict[str, dict[str, Any]]:
    return {d["org"]: d for d in read_jsonl(path)}


def training_vectors(
    records: Iterable[dict[str, Any]], labels: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, float]], list[str], list[str]]:
    """(vectors, labels, orgs): one vector per account checkpoint and one at the end."""
    bench = default_index()
    states: dict[str, AccountState] = {}
    xs: list[dict[str, float]] = []
    ys: list[str] = []
    orgs: list[str] = []
    cps = set(CHECKPOINTS)
    for rec in records:
        org = rec.get("org")
        if not org or org not in labels:
            continue
        st = states.get(org)
        if st is None:
            st = states[org] = AccountState(org)
        st.add(extract(rec, bench))
        if st.n in cps:
            xs.append(st.vector())
            ys.append(labels[org]["label"])
            orgs.append(org)
    for org, st in states.items():
        if st.n not in cps:
            xs.append(st.vector())
            ys.append(labels[org]["label"])
            orgs.append(org)
    return xs, ys, orgs


def calibrate(model: ScoringModel, records: list[dict[str, Any]], labels: dict[str, dict[str, Any]]) -> None:
    """Store the batch scores of the benign accounts (rings off: calibration is per account)."""
    rep = Detector(model=model, rings=False).run(records)
    model.benign_scores = sorted(a.score for a in rep.accounts if labels.get(a.org, {}).get("label") == "benign")


def train(records: list[dict[str, Any]], labels: dict[str, dict[str, Any]], note: str = "") -> ScoringModel:
    xs, ys, _ = training_vectors(records, labels)
    model = fit(xs, ys)
    calibrate(model, records, labels)
    counts: dict[str, int] = defaultdict(int)
    for d in labels.values():
        counts[d["label"]] += 1
    model.meta = {"trained_on": note, "accounts": dict(counts), "vectors": len(xs), "records": len(records),
                  "built": time.strftime("%Y-%m-%d")}
    return model


def _simulated(scenarios: list[str], seed: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """DEV-split traffic from the simulator (``distillguard.sim``), scenarios concatenated with distinct orgs."""
    from ..sim import generate  # type: ignore[attr-defined]

    records: list[dict[str, Any]] = []
    labels: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(scenarios):
        recs, labs = generate(name, seed=seed + i, split="dev")
        for r in recs:
            r["org"] = f"{name}:{r['org']}"
        for lab in labs:
            lab = dict(lab)
            lab["org"] = f"{name}:{lab['org']}"
            labels[lab["org"]] = lab
        records.extend(recs)
    records.sort(key=lambda r: r.get("ts", 0.0))
    return records, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traffic", action="append", default=[])
    ap.add_argument("--labels", action="append", default=[])
    ap.add_argument("--simulate", default="", help="comma-separated simulator scenarios (DEV split)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).with_name(MODEL_FILE)))
    a = ap.parse_args(argv)
    records: list[dict[str, Any]] = []
    labels: dict[str, dict[str, Any]] = {}
    for i, (tp, lp) in enumerate(zip(a.traffic, a.labels)):
        labs = read_labels(lp)
        for r in read_jsonl(tp):
            r["org"] = f"f{i}:{r.get('org')}"
            records.append(r)
        labels.update({f"f{i}:{k}": {**v, "org": f"f{i}:{k}"} for k, v in labs.items()})
    note = ",".join(a.traffic)
    if a.simulate:
        recs, labs = _simulated(a.simulate.split(","), a.seed)
        records += recs
        labels.update(labs)
        note = f"simulator dev split: {a.simulate} seed {a.seed}" + (f"; {note}" if note else "")
    if not records:
        ap.error("no training traffic")
    records.sort(key=lambda r: r.get("ts", 0.0))
    model = train(records, labels, note)
    model.save(a.out)
    print(f"wrote {a.out}: {model.meta}", file=sys.stderr)
    for cls, row in zip(CLASSES, model.coef):
        top = sorted(zip(model.features, row), key=lambda t: -abs(t[1]))[:6]
        print(cls, ", ".join(f"{f}={w:+.2f}" for f, w in top), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
