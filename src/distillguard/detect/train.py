"""Train and calibrate the scorer on labelled DEV traffic, and write ``detect/model.json``.

    python -m distillguard.detect.train --simulate standard,sybil,evasive --seeds 11   # the shipped model
    python -m distillguard.detect.train --traffic dev.jsonl --labels dev_labels.jsonl [--out model.json]

Each account contributes its feature vectors at every checkpoint (so the model sees small and large windows); the
threshold calibration data are the scores the batch detector gives the *benign* dev accounts. Never train on the
split you report numbers from (``experiment`` reports on the simulator's test split with other seeds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from .account import AccountState
from .bench import default_index
from .engine import CHECKPOINTS, Detector
from .features import RequestFeatures, extract
from .model import CLASSES, MODEL_FILE, ScoringModel, fit

Labels = dict[str, dict[str, Any]]
Stream = list[tuple[str, RequestFeatures]]  # (org, features) in time order


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def read_labels(path: str | Path) -> Labels:
    return {d["org"]: d for d in read_jsonl(path)}


def simulated_files(scenario: str, seed: int, split: str, workdir: Path) -> tuple[Path, Path]:
    """The simulator's traffic and labels files for (scenario, seed, split), generated into ``workdir`` once."""
    from ..sim import generate, get

    workdir.mkdir(parents=True, exist_ok=True)
    traffic = workdir / f"{split}_{scenario}_{seed}.jsonl"
    labels = workdir / f"{split}_{scenario}_{seed}.labels.jsonl"
    if not (traffic.exists() and labels.exists()):
        tmp_t, tmp_l = traffic.with_suffix(".part"), labels.with_suffix(".part")
        with open(tmp_t, "wb") as out, open(tmp_l, "wb") as lab:
            generate(get(scenario), seed, out, lab, split=split)  # type: ignore[arg-type]
        tmp_t.replace(traffic)
        tmp_l.replace(labels)
    return traffic, labels


def load_stream(pairs: Iterable[tuple[str | Path, str | Path, str]]) -> tuple[Stream, Labels]:
    """Features of several (traffic, labels, prefix) files, orgs and rings prefixed, merged in time order."""
    bench = default_index()
    stream: Stream = []
    labels: Labels = {}
    for traffic, lab_path, prefix in pairs:
        for org, d in read_labels(lab_path).items():
            d = dict(d, org=f"{prefix}{org}")
            if d.get("ring"):
                d["ring"] = f"{prefix}{d['ring']}"
            labels[d["org"]] = d
        for rec in read_jsonl(traffic):
            org = rec.get("org")
            if org:
                stream.append((f"{prefix}{org}", extract(rec, bench)))
    stream.sort(key=lambda p: p[1].ts)
    return stream, labels


def training_vectors(stream: Stream, labels: Labels) -> tuple[list[dict[str, float]], list[str], list[str]]:
    """(vectors, labels, orgs): one vector per account checkpoint and one at the end."""
    states: dict[str, AccountState] = {}
    xs: list[dict[str, float]] = []
    ys: list[str] = []
    orgs: list[str] = []
    cps = set(CHECKPOINTS)
    for org, f in stream:
        if org not in labels:
            continue
        st = states.get(org)
        if st is None:
            st = states[org] = AccountState(org)
        st.add(f)
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


def calibrate(model: ScoringModel, stream: Stream, labels: Labels) -> None:
    """Store the batch scores of the benign accounts (rings off: calibration is per account)."""
    rep = Detector(model=model, rings=False).run_features(stream)
    model.benign_scores = sorted(a.score for a in rep.accounts if labels.get(a.org, {}).get("label") == "benign")


def train(stream: Stream, labels: Labels, note: str = "", exclude: Sequence[str] = ()) -> ScoringModel:
    xs, ys, _ = training_vectors(stream, labels)
    model = fit(xs, ys, exclude=exclude)
    calibrate(model, stream, labels)
    counts: dict[str, int] = defaultdict(int)
    for d in labels.values():
        counts[d["label"]] += 1
    model.meta = {"trained_on": note, "accounts": dict(counts), "vectors": len(xs), "records": len(stream),
                  "excluded_features": list(exclude), "built": time.strftime("%Y-%m-%d")}
    return model


def simulated_stream(scenarios: Sequence[str], seeds: Sequence[int], split: str,
                     workdir: Path) -> tuple[Stream, Labels]:
    """Features and labels of the simulator's ``split`` for every scenario × seed."""
    files = []
    for name in scenarios:
        for seed in seeds:
            t, lab = simulated_files(name, seed, split, workdir)
            files.append((t, lab, f"{name}/{seed}:"))
    return load_stream(files)


def describe(model: ScoringModel, out: Any = sys.stderr) -> None:
    for cls, row in zip(CLASSES, model.coef):
        top = sorted(zip(model.features, row), key=lambda t: -abs(t[1]))[:8]
        print(cls, ", ".join(f"{f}={w:+.2f}" for f, w in top), file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traffic", action="append", default=[])
    ap.add_argument("--labels", action="append", default=[])
    ap.add_argument("--simulate", default="", help="comma-separated simulator scenarios (DEV split)")
    ap.add_argument("--seeds", default="11", help="comma-separated simulator seeds")
    ap.add_argument("--workdir", default="", help="where simulated files are kept (default: a temporary dir)")
    ap.add_argument("--out", default=str(Path(__file__).with_name(MODEL_FILE)))
    a = ap.parse_args(argv)
    files = [(tp, lp, f"f{i}:") for i, (tp, lp) in enumerate(zip(a.traffic, a.labels))]
    stream, labels = load_stream(files) if files else ([], {})
    notes = [f"--traffic {tp} --labels {lp}" for tp, lp in zip(a.traffic, a.labels)]
    if a.simulate:
        seeds = [int(s) for s in a.seeds.split(",")]
        with tempfile.TemporaryDirectory(prefix="dg-train-") as tmp:
            s2, l2 = simulated_stream(a.simulate.split(","), seeds, "dev", Path(a.workdir or tmp))
        stream = sorted(stream + s2, key=lambda p: p[1].ts)
        labels.update(l2)
        notes.insert(0, f"--simulate {a.simulate} --seeds {a.seeds}")
    if not stream:
        ap.error("no training traffic")
    started = time.perf_counter()
    model = train(stream, labels, "python -m distillguard.detect.train " + " ".join(notes))
    model.save(a.out)
    print(f"wrote {a.out} in {time.perf_counter() - started:.0f} s: {model.meta}", file=sys.stderr)
    describe(model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
