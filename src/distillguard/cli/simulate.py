"""``distillguard simulate``: labelled tenant traffic, offline (replay answers) or live against a gateway."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..config import load_settings
from ..sim import scenarios
from ..sim.corpus import SPLITS, SimCorpus
from ..sim.generate import generate
from .output import err_console


def _admin_token(home: Path) -> str:
    tok = os.environ.get("DG_ADMIN_TOKEN")
    if tok:
        return tok
    p = home / "admin_token"
    if p.is_file():
        return p.read_text().strip()
    raise typer.BadParameter("live mode needs the gateway's admin token: set DG_ADMIN_TOKEN or DG_HOME/admin_token")


def simulate(
    out: Path = typer.Option(..., "--out", help="Traffic JSONL to write (contracts §1)."),
    labels: Path = typer.Option(..., "--labels", help="Labels JSONL to write ({org, label, ring, kind, scenario})."),
    scenario: str = typer.Option("mixed-small", "--scenario",
                                 help=f"One of: {', '.join(sorted(scenarios.SCENARIOS))}."),
    seed: int = typer.Option(0, "--seed", help="Random seed; (scenario, seed, split, corpus) fixes every byte."),
    split: str = typer.Option("test", "--split", help="Corpus half the prompts come from: test (report), dev "
                              "(develop detectors), or all."),
    corpus_dir: Optional[Path] = typer.Option(None, "--corpus-dir", help="Full corpus directory (default: "
                                              "DG_CORPUS_DIR, else the compact corpus shipped in the package)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes offline (default: by size)."),
    target: Optional[str] = typer.Option(None, "--target", help="Live mode: base URL of a running gateway on this "
                                         "machine, e.g. http://127.0.0.1:8000."),
    concurrency: int = typer.Option(16, "--concurrency", help="Live mode: requests in flight at most."),
    speed: Optional[float] = typer.Option(None, "--speed", help="Live mode: compress the simulated clock by this "
                                          "factor (default: send in order as fast as concurrency allows)."),
    max_requests: int = typer.Option(5000, "--max-requests", help="Live mode: stop after this many requests."),
    time_limit: float = typer.Option(600.0, "--time-limit", help="Live mode: stop after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Generate labelled tenant traffic (benign, distillation, evaluation) grounded in the real corpus."""
    try:
        scen = scenarios.get(scenario)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if split not in SPLITS:
        raise typer.BadParameter(f"--split must be one of {', '.join(SPLITS)}")
    settings = load_settings()
    cdir = corpus_dir if corpus_dir is not None else settings.corpus_dir
    corpus = SimCorpus(cdir, split)  # type: ignore[arg-type]
    out.parent.mkdir(parents=True, exist_ok=True)
    labels.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err_console, transient=True)
    with progress, open(out, "wb") as fo, open(labels, "wb") as fl:
        if target is None:
            task = progress.add_task(f"simulating {scen.name} (tenants)", total=None)
            summary = generate(scen, seed, fo, fl, split=corpus.split, corpus_dir=cdir,  # type: ignore[arg-type]
                               cache_dir=settings.home / "cache", workers=workers, corpus=corpus,
                               progress=lambda d, n: progress.update(task, completed=d, total=n)).to_json()
        else:
            from ..sim.live import run_live

            token = _admin_token(settings.home)
            task = progress.add_task(f"driving {target} with {scen.name} (requests)", total=None)
            try:
                summary = asyncio.run(run_live(
                    scen, seed, target, token, fo, fl, corpus=corpus, concurrency=concurrency, speed=speed,
                    max_requests=max_requests, time_limit_s=time_limit,
                    progress=lambda d, n: progress.update(task, completed=d, total=n))).to_json()
            except ValueError as e:
                raise typer.BadParameter(str(e)) from None
    summary.update(out=str(out), labels=str(labels))
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        err_console.print(f"{summary['records']} records of {summary['accounts']} accounts → {out}; labels → {labels}"
                          f" ({summary['seconds']} s)")
