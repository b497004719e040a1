"""``distillguard detect``: score the accounts of a traffic file (contracts §1–2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..jsonl import read_objects
from .output import emit, err_console


def _records(path: Path) -> Iterator[dict[str, Any]]:
    return read_objects(path)


def _labels(path: Path) -> dict[str, dict[str, Any]]:
    return {d["org"]: d for d in _records(path) if "org" in d}


def detect(
    input: Path = typer.Option(..., "--input", "-i", help="Traffic JSONL (contracts §1; .gz or '-' for stdin)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labels JSONL: also print quality metrics."),
    declarations: Optional[Path] = typer.Option(
        None, "--declarations",
        help="JSONL of {\"org\", \"purposes\"} (a simulator labels file has both): each account gets its declared "
             "purposes, and a flagged account that declared fine-tuning is marked for an uploads check."),
    target_fpr: float = typer.Option(0.001, "--target-fpr", help="Account-level false-positive rate to flag at."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model file (default: the one shipped)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write an HTML report (needs --labels)."),
    no_rings: bool = typer.Option(False, "--no-rings", help="Skip cross-account ring detection."),
    two_sample: bool = typer.Option(False, "--two-sample/--no-two-sample",
                                    help="Also test flagged accounts' prompts against the population's (MMD, one more "
                                         "pass over the file; evidence for a reviewer, not part of the score)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes for feature extraction (default: cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Score every account of a traffic file: benign / distillation / evaluation, with reasons and rings."""
    from ..detect.engine import Detector
    from ..detect.evaluate import evaluate
    from ..detect.model import ScoringModel

    if not input.exists() and str(input) != "-":
        err_console.print(f"[red]error[/red]: no such file: {input}")
        raise typer.Exit(2)
    declared = None
    if declarations is not None:  # read first: a bad file fails before the long pass over the traffic
        from ..detect.declared import read_declarations

        try:
            declared = read_declarations(declarations)
        except (OSError, ValueError) as e:
            err_console.print(f"[red]error[/red]: --declarations: {e}")
            raise typer.Exit(2) from None
    det = Detector(model=ScoringModel.load(model) if model else None, target_fpr=target_fpr, rings=not no_rings)
    if str(input) == "-" or input.name.endswith(".gz"):
        rep = det.run(_records(input))
    else:  # accounts split by org across the cores
        from ..detect.parallel import run_file

        rep = run_file(det, input, workers)
    if two_sample and str(input) != "-":
        from ..detect.twosample import annotate

        annotate(rep, _records(input))
    if declared is not None:
        from ..detect.declared import annotate as mark_declared

        mark_declared(rep, declared)
    metrics = None
    labs: dict[str, dict[str, Any]] = {}
    if labels is not None:
        labs = _labels(labels)
        metrics = evaluate(rep, labs)
    if report is not None:
        _write_report(report, rep, labs, metrics, det.model)
    doc = rep.to_json(metrics)
    if as_json:
        emit(doc, True)
        return
    print_report(rep, metrics)


def _write_report(path: Path, rep: Any, labels: dict[str, dict[str, Any]], metrics: Any, det_model: Any) -> None:
    try:
        from ..sim.report import write_report
    except ImportError:
        err_console.print("[yellow]--report needs the simulator's report module; skipped[/yellow]")
        return
    from ..detect.model import provenance_note

    write_report(path, rep.to_json(metrics)["accounts"], list(labels.values()), notes=provenance_note(det_model))
    err_console.print(f"report written to {path}")


def print_report(rep: Any, metrics: dict[str, Any] | None) -> None:
    con = Console()
    flagged = [a for a in rep.accounts if a.flagged or a.label != "benign"]
    t = Table(title=f"{len(rep.accounts)} accounts, {rep.records} requests; flag threshold {rep.threshold:.4f} "
                    f"(target FPR {rep.target_fpr:g}); {len(flagged)} not benign")
    for col in ("org", "score", "label", "ring", "requests", "after", "top reason"):
        t.add_column(col)
    for a in flagged[:200]:
        t.add_row(a.org, f"{a.score:.3f}", a.label, a.ring or "", str(a.requests),
                  str(a.flagged_after or ""), (a.reasons[0] if a.reasons else "")[:90])
    con.print(t)
    if metrics:
        m = Table(title="metrics")
        m.add_column("metric")
        m.add_column("value")
        from ..detect.evaluate import metrics_table

        for k, v in metrics_table(metrics):
            m.add_row(k, v)
        con.print(m)
