"""Train on the simulator's DEV split, evaluate once on its TEST split (other seeds), print the per-scenario table.

    python -m distillguard.detect.experiment --dev-seeds 11 --test-seeds 21 --workdir /tmp/dgx [--out model.json]
    python -m distillguard.detect.experiment --evaluate shipped --scenarios standard@full --test-seeds 31 \
        --full-corpus ../shared/data --workdir /tmp/dgx      (no training: the shipped model on other traffic)

Also trains the *ablation* model (no parameter features: temperature, n, max_tokens) on the same dev data and
reports it on the same test data, so a reader sees how much the model leans on request parameters. The thresholds
come from the benign dev accounts only (``train.calibrate``); nothing is tuned on the test split.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..sim import metrics as M
from .account import PARAMETER_FEATURES
from .engine import Detector
from .model import ScoringModel
from .train import EVIDENCE_K, Labels, Stream, describe, missing_corpus, simulated_stream, train

SCENARIOS = ("standard", "sybil", "evasive")
COLUMNS = ("accounts", "auc", "tpr@0.1%", "benign_fpr", "decl_flag", "med_req", "ring_rec", "mixed5_tpr",
           "eval_acc")


def _share(xs: Sequence[bool]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def table_row(rows: list[M.Row]) -> dict[str, Any]:
    """The brief's columns for one set of labelled accounts. ``benign_fpr`` is over the benign accounts that declared
    no fine-tuning; ``decl_flag`` is the flagged share of those that did (``detect.declared``)."""
    benign = [r for r in rows if r.label == "benign" and not r.declared]
    evals = [r for r in rows if r.label == "evaluation"]
    pure = [r for r in rows if r.positive and r.kind != "distill-mixed" and not r.ring]
    until = [r.flagged_after for r in pure if r.flagged and r.flagged_after is not None]
    return {
        "accounts": len(rows),
        "auc": M.auc(rows),
        "tpr@0.1%": M.tpr_at_fpr(rows, 0.001),
        "benign_fpr": _share([r.flagged for r in benign]),
        "decl_flag": _share([r.flagged for r in rows if r.label == "benign" and r.declared]),
        "med_req": float(statistics.median(until)) if until else None,
        "ring_rec": M.ring_recall(rows)["overall"],
        "mixed5_tpr": _share([r.flagged for r in rows if r.kind == "distill-mixed"]),
        "eval_acc": _share([r.predicted == "evaluation" for r in evals]),
    }


def evaluate(model: ScoringModel, stream: Stream, labels: Labels) -> tuple[dict[str, dict[str, Any]], list[M.Row]]:
    rep = Detector(model=model).run_features(stream)
    rows = M.join([a.to_json() for a in rep.accounts], list(labels.values()))
    out = {}
    for sc in sorted({r.scenario for r in rows}):
        out[sc] = table_row([r for r in rows if r.scenario == sc])
    out["all"] = table_row(rows)
    return out, rows


def print_table(title: str, table: dict[str, dict[str, Any]], out: Any = None) -> None:
    out = out or sys.stdout  # looked up when called (a default bound at import would escape redirection)
    print(f"\n{title}", file=out)
    print(f"{'scenario':<10}" + "".join(f"{c:>11}" for c in COLUMNS), file=out)
    for sc, row in table.items():
        print(f"{sc:<10}" + "".join(f"{M.fmt(row[c]):>11}" for c in COLUMNS), file=out)


def print_kinds(rows: list[M.Row], out: Any = None) -> None:
    out = out or sys.stdout
    print(f"\n{'kind':<22}{'accounts':>9}{'flagged':>9}{'med_score':>10}{'med_req':>9}", file=out)
    for k in M.per_kind(rows):
        print(f"{k['kind']:<22}{k['accounts']:>9}{M.fmt(k['flagged']):>9}{M.fmt(k['median_score']):>10}"
              f"{M.fmt(k['median_requests_to_flag']):>9}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--dev-seeds", default="11")
    ap.add_argument("--test-seeds", default="21")
    ap.add_argument("--calibration-seeds", default="", help="DEV seeds whose benign accounts set the thresholds "
                    "(default: the training seeds)")
    ap.add_argument("--workdir", required=True, help="where simulated files are generated (and re-used)")
    ap.add_argument("--out", default="", help="also write the trained model here")
    ap.add_argument("--evidence-k", type=float, default=EVIDENCE_K, help="see distillguard.detect.train")
    ap.add_argument("--full-corpus", type=Path, default=None,
                    help="corpus directory (../shared/data) for scenarios named NAME@full (see detect.train)")
    ap.add_argument("--evaluate", metavar="MODEL", default="",
                    help="train nothing: evaluate this model file ('shipped': the packaged model) on the test seeds "
                         "(dev and calibration seeds are then not used)")
    a = ap.parse_args(argv)
    scen = a.scenarios.split(",")
    dev_seeds = [int(s) for s in a.dev_seeds.split(",")]
    test_seeds = [int(s) for s in a.test_seeds.split(",")]
    cal_seeds = [int(s) for s in a.calibration_seeds.split(",")] if a.calibration_seeds else []
    if set(dev_seeds) & set(test_seeds) or set(cal_seeds) & set(test_seeds) or set(cal_seeds) & set(dev_seeds):
        ap.error("dev, calibration and test seeds must differ")
    if err := missing_corpus(scen, a.full_corpus):
        ap.error(err)
    if a.evaluate and a.out:
        ap.error("--evaluate trains no model, so there is none to write to --out")
    wd = Path(a.workdir)
    if a.evaluate:
        given = ScoringModel.load() if a.evaluate == "shipped" else ScoringModel.load(a.evaluate)
        test, test_labels = simulated_stream(scen, test_seeds, "test", wd, a.full_corpus)
        table, rows = evaluate(given, test, test_labels)
        print_table(f"TEST split, seeds {a.test_seeds}: {given.meta.get('trained_on', a.evaluate)}", table)
        print_kinds(rows)
        return 0
    t0 = time.perf_counter()
    dev, dev_labels = simulated_stream(scen, dev_seeds, "dev", wd, a.full_corpus)
    note = f"python -m distillguard.detect.train --simulate {a.scenarios} --seeds {a.dev_seeds}"
    if a.full_corpus:
        note += f" --full-corpus {a.full_corpus}"
    cal = simulated_stream(scen, cal_seeds, "dev", wd, a.full_corpus) if cal_seeds else None
    if cal_seeds:
        note += f" --calibration-seeds {a.calibration_seeds}"
    if a.evidence_k != EVIDENCE_K:
        note += f" --evidence-k {a.evidence_k:g}"
    model = train(dev, dev_labels, note, calibration=cal, evidence_k=a.evidence_k)
    ablation = train(dev, dev_labels, note + " (ablation)", exclude=PARAMETER_FEATURES, calibration=cal,
                     evidence_k=a.evidence_k)
    del cal
    print(f"trained on {len(dev)} dev records in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    describe(model)
    del dev
    if a.out:
        model.save(a.out)
    test, test_labels = simulated_stream(scen, test_seeds, "test", wd, a.full_corpus)
    table, rows = evaluate(model, test, test_labels)
    print_table(f"TEST split, seeds {a.test_seeds} (model trained on DEV seeds {a.dev_seeds})", table)
    print_kinds(rows)
    abl, _ = evaluate(ablation, test, test_labels)
    print_table(f"ABLATION: without parameter features {', '.join(PARAMETER_FEATURES)}", abl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
