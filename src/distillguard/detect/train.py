"""Train and calibrate the scorer on labelled DEV traffic, and write ``detect/model.json``.

    python -m distillguard.detect.train --simulate standard,sybil,evasive --seeds 11 --calibration-seeds 12,13
        # the shipped model: fitted on seed 11, thresholds from the benign accounts of seeds 12 and 13
    python -m distillguard.detect.train --traffic dev.jsonl --labels dev_labels.jsonl [--out model.json]

Each account contributes its feature vectors at every checkpoint (so the model sees small and large windows); the
threshold calibration data are the scores the batch detector gives the *benign* dev accounts, of held-out seeds
with ``--calibration-seeds`` (the training accounts score lower than new ones). Never train on the split you report
numbers from (``experiment`` reports on the simulator's test split with other seeds).
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
from .declared import declared_of
from .engine import CHECKPOINTS, SUB_CHECKPOINTS, SUB_MAX_SHARE, Detector, Tracked, templated
from .rings import find_rings
from .features import RequestFeatures, extract
from .model import CLASSES, FAMILIES, MODEL_FILE, ScoringModel, family, fit

Labels = dict[str, dict[str, Any]]
# Standardised features of a window of n requests are shrunk towards the benign centre by n / (n + EVIDENCE_K)
# (``model.fit``): ten requests count half. Chosen on DEV seeds 14 and 15 (docs/adr/0007-detection.md).
EVIDENCE_K = 10.0
Stream = list[tuple[str, RequestFeatures]]  # (org, features) in time order


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def read_labels(path: str | Path) -> Labels:
    return {d["org"]: d for d in read_jsonl(path)}


FULL = "@full"  # a scenario name ending in this is simulated from the full corpus (``--full-corpus``)


def missing_corpus(scenarios: Sequence[str], full_corpus: Path | None) -> str | None:
    """The error for scenarios on the full corpus asked for without its directory (None: nothing missing)."""
    named = [s for s in scenarios if s.endswith(FULL)]
    if named and full_corpus is None:
        return f"{', '.join(named)}: scenarios named NAME{FULL} need the full corpus' directory (--full-corpus)"
    return None


def simulated_files(scenario: str, seed: int, split: str, workdir: Path,
                    full_corpus: Path | None = None) -> tuple[Path, Path]:
    """The simulator's traffic and labels files for (scenario, seed, split), generated into ``workdir`` once.

    ``scenario`` is a scenario name, simulated from the compact corpus that ships with the package, or a name ending
    in ``@full``, simulated from the ``full_corpus`` directory (../shared/data: ShareGPT chats, more instruction
    sets), whose prompts and answers the model never sees when it is trained on the compact corpus only."""
    from ..sim import generate, get

    if err := missing_corpus([scenario], full_corpus):
        raise ValueError(err)
    name, full = (scenario[: -len(FULL)], True) if scenario.endswith(FULL) else (scenario, False)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{split}_{name}_{seed}" + ("_full" if full else "")
    traffic = workdir / f"{tag}.jsonl"
    labels = workdir / f"{tag}.labels.jsonl"
    if not (traffic.exists() and labels.exists()):
        tmp_t, tmp_l = traffic.with_suffix(".part"), labels.with_suffix(".part")
        with open(tmp_t, "wb") as out, open(tmp_l, "wb") as lab:
            generate(get(name), seed, out, lab, split=split,  # type: ignore[arg-type]
                     corpus_dir=full_corpus if full else None)
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


# Allowed harvesting: tenants of these kinds are benign, and collect answers as training data (for the provider's own
# models, which the terms allow). The model is to learn what collecting looks like, so they train as distillation;
# whether the terms allow it is the declaration's question (``declared``: they all declare fine-tuning, and declared
# accounts do not set the thresholds). Trained as benign, they taught the model that a templated, single-shot,
# whole-answer account without dataset-style wording is innocent (docs/adr/0007-detection.md).
COLLECTING_KINDS = frozenset(("benign-finetune",))


def training_label(label: dict[str, Any]) -> str:
    """The class an account's vectors train as: its label, but distillation for a benign ``COLLECTING_KINDS`` one."""
    if label.get("label") == "benign" and label.get("kind") in COLLECTING_KINDS:
        return "distillation"
    return str(label["label"])


def _whole(label: dict[str, Any]) -> bool:
    """Whether an account's label applies to each of its requests (not so for a benign account that also harvests a
    little: which of its sub-streams harvests is not labelled, so its sub-streams are not training examples)."""
    return not str(label.get("kind") or "").endswith("mixed")


def training_vectors(stream: Stream, labels: Labels) -> tuple[list[dict[str, float]], list[str], list[str]]:
    """(vectors, labels, orgs): one vector per account checkpoint and one at the end; for accounts whose label
    holds for every request, also their small windows and their sub-streams (``engine``) at the sub-stream
    checkpoints, so the model knows what 10–40 requests of each class look like. The templated single-shot stream
    is taken whatever its share (it is never the whole account: first uses of a scaffold and follow-ups are out),
    so the model sees harvesters' templated streams too."""
    states: dict[str, AccountState] = {}
    subs: dict[tuple[str, str], AccountState] = {}
    xs: list[dict[str, float]] = []
    ys: list[str] = []
    orgs: list[str] = []
    cps = set(CHECKPOINTS)
    small = set(SUB_CHECKPOINTS) - cps
    sub_cps = set(SUB_CHECKPOINTS)
    for org, f in stream:
        lab = labels.get(org)
        if lab is None:
            continue
        st = states.get(org)
        if st is None:
            st = states[org] = AccountState(org)
        repeat = f.prompt_hash in st.prompts
        st.add(f)
        if st.n in cps or (st.n in small and _whole(lab)):
            xs.append(st.vector())
            ys.append(training_label(lab))
            orgs.append(org)
        if not _whole(lab):
            continue
        sids = [f"c:{f.client}", f"r:{f.route}"] + (["t"] if templated(st, f, repeat) else [])
        for sid in sids:
            sub = subs.get((org, sid))
            if sub is None:
                sub = subs[(org, sid)] = AccountState(org)
            sub.add(f)
            if sub.n in sub_cps and (sid == "t" or sub.n <= SUB_MAX_SHARE * st.n):
                xs.append(sub.vector())
                ys.append(training_label(lab))
                orgs.append(org)
    for org, st in states.items():
        if st.n not in cps:
            xs.append(st.vector())
            ys.append(training_label(labels[org]))
            orgs.append(org)
    return xs, ys, orgs


def _calibrates(label: dict[str, Any]) -> bool:
    """Whether an account's scores set the thresholds: benign, and not declaring fine-tuning (``declared``: that
    traffic looks like distillation and is checked against fine-tuning uploads instead). Declared accounts still
    train the model."""
    return label.get("label") == "benign" and not declared_of(label)


def calibrate(model: ScoringModel, stream: Stream, labels: Labels) -> None:
    """Store the batch scores of the benign accounts that declared no fine-tuning (rings off: calibration is per
    account, and takes the maximum over each account's checkpoints and sub-streams), and the scores of the candidate
    rings found among those accounts alone (clusters of allowed batch jobs, coding assistants ...) for the ring
    threshold."""
    det = Detector(model=model, rings=False)
    orgs: dict[str, Tracked] = {}
    keys: dict[tuple[str, str], Tracked] = {}
    n = det.consume(stream, orgs, keys)
    rep = det.finish(orgs, keys, n)
    benign = {o: t for o, t in orgs.items() if _calibrates(labels.get(o, {}))}
    model.benign_scores = sorted(a.score for a in rep.accounts if a.org in benign)
    fams: dict[str, dict[str, float]] = {f: dict.fromkeys(benign, 0.0) for f in FAMILIES}
    for o, t in benign.items():
        fams["account"][o] = t.best
    for (o, sid), k in keys.items():
        if o in benign and k.best_vector is not None:
            f = family(sid)
            fams[f][o] = max(fams[f][o], k.best)
    model.benign_family_scores = {f: sorted(v.values()) for f, v in fams.items()}
    rings = find_rings([t.state for t in benign.values()])
    model.benign_ring_scores = sorted(det.ring_score(r, benign)[0] for r in rings)


def train(stream: Stream, labels: Labels, note: str = "", exclude: Sequence[str] = (),
          calibration: tuple[Stream, Labels] | None = None, evidence_k: float = EVIDENCE_K) -> ScoringModel:
    """Fit the model on ``stream`` and set its thresholds from the benign accounts of ``calibration`` (held-out
    dev traffic; default: the training traffic itself, whose benign accounts the model has seen and scores low)."""
    xs, ys, _ = training_vectors(stream, labels)
    model = fit(xs, ys, exclude=exclude, evidence_k=evidence_k)
    cal_stream, cal_labels = calibration or (stream, labels)
    calibrate(model, cal_stream, cal_labels)
    counts: dict[str, int] = defaultdict(int)
    for d in labels.values():
        counts[d["label"]] += 1
    collecting = sum(1 for d in labels.values() if training_label(d) != d["label"])
    benign_cal = sum(1 for d in cal_labels.values() if _calibrates(d))
    model.meta = {"trained_on": note, "accounts": dict(counts), "vectors": len(xs), "records": len(stream),
                  "calibration": "held-out traffic" if calibration else "the training traffic",
                  "calibration_benign_accounts": benign_cal,
                  "benign_trained_as_distillation": collecting,
                  "excluded_features": list(exclude), "built": time.strftime("%Y-%m-%d")}
    return model


def simulated_stream(scenarios: Sequence[str], seeds: Sequence[int], split: str,
                     workdir: Path, full_corpus: Path | None = None) -> tuple[Stream, Labels]:
    """Features and labels of the simulator's ``split`` for every scenario × seed (``simulated_files``)."""
    files = []
    for name in scenarios:
        for seed in seeds:
            t, lab = simulated_files(name, seed, split, workdir, full_corpus)
            files.append((t, lab, f"{name}/{seed}:"))
    stream, labels = load_stream(files)
    for org, d in labels.items():  # per-scenario tables tell the corpora apart
        d["scenario"] = org.split("/", 1)[0]
    return stream, labels


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
    ap.add_argument("--calibration-seeds", default="",
                    help="simulator seeds (DEV split, not among --seeds) whose benign accounts set the thresholds "
                         "(default: the training traffic)")
    ap.add_argument("--workdir", default="", help="where simulated files are kept (default: a temporary dir)")
    ap.add_argument("--full-corpus", type=Path, default=None,
                    help="corpus directory (../shared/data) for scenarios named NAME@full")
    ap.add_argument("--evidence-k", type=float, default=EVIDENCE_K,
                    help="pseudo-count of requests behind the benign centre that small windows are shrunk towards "
                         "(0: none)")
    ap.add_argument("--out", default=str(Path(__file__).with_name(MODEL_FILE)))
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    cal_seeds = [int(s) for s in a.calibration_seeds.split(",")] if a.calibration_seeds else []
    if cal_seeds and not a.simulate:
        ap.error("--calibration-seeds needs --simulate")
    if set(cal_seeds) & set(seeds):
        ap.error("calibration seeds must differ from the training seeds")
    if err := missing_corpus(a.simulate.split(","), a.full_corpus):
        ap.error(err)
    files = [(tp, lp, f"f{i}:") for i, (tp, lp) in enumerate(zip(a.traffic, a.labels))]
    stream, labels = load_stream(files) if files else ([], {})
    notes = [f"--traffic {tp} --labels {lp}" for tp, lp in zip(a.traffic, a.labels)]
    if a.simulate:
        with tempfile.TemporaryDirectory(prefix="dg-train-") as tmp:
            s2, l2 = simulated_stream(a.simulate.split(","), seeds, "dev", Path(a.workdir or tmp), a.full_corpus)
        stream = sorted(stream + s2, key=lambda p: p[1].ts)
        labels.update(l2)
        notes.insert(0, f"--simulate {a.simulate} --seeds {a.seeds}")
        if a.full_corpus:
            notes.insert(1, f"--full-corpus {a.full_corpus}")
    if not stream:
        ap.error("no training traffic")
    calibration = None
    if cal_seeds:
        with tempfile.TemporaryDirectory(prefix="dg-train-") as tmp:
            calibration = simulated_stream(a.simulate.split(","), cal_seeds, "dev", Path(a.workdir or tmp),
                                             a.full_corpus)
        notes.append(f"--calibration-seeds {a.calibration_seeds}")
    started = time.perf_counter()
    if a.evidence_k != EVIDENCE_K:
        notes.append(f"--evidence-k {a.evidence_k:g}")
    model = train(stream, labels, "python -m distillguard.detect.train " + " ".join(notes), calibration=calibration,
                  evidence_k=a.evidence_k)
    model.save(a.out)
    print(f"wrote {a.out} in {time.perf_counter() - started:.0f} s: {model.meta}", file=sys.stderr)
    describe(model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
