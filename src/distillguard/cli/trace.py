"""``distillguard trace DATASET``: which records of a dataset came from API outputs, and from whom.

Also ``trace eval`` (``trace_eval``): the labelled evaluation of forensics/evaluate.py as a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..config import load_settings
from ..errors import GatewayError
from ..forensics.formats import DatasetFormatError, read_dataset
from ..forensics.index import OutputIndex, default_index_dir
from ..forensics.report import render_report
from ..forensics.trace import trace_records
from ..ledger.store import LedgerStore
from ..services import open_store
from .output import emit, err_console, fail


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)


def trace(
    dataset: Path = typer.Argument(..., help="JSONL, JSON, CSV or Parquet in Alpaca, ShareGPT, OpenAI or text format."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    report: Path | None = typer.Option(None, "--report", help="Also write an HTML report here."),
    index_backend: str = typer.Option("disk", "--index", help="disk (DG_HOME/forensics) or redis (DG_REDIS_URL)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild the disk index from the whole ledger."),
) -> None:
    """Trace a suspect dataset to the API outputs in the ledger (contracts §2)."""
    settings = load_settings()
    store = open_store(settings)
    ledger = LedgerStore(store.engine)
    try:
        records = list(read_dataset(dataset))
    except DatasetFormatError as e:
        _fail("invalid_dataset", str(e), as_json)
    if index_backend == "redis":
        if settings.redis_url is None:
            _fail("invalid_option", "--index redis needs DG_REDIS_URL", as_json)
        index = OutputIndex.redis(settings.redis_url.get_secret_value())  # type: ignore[union-attr]
    elif index_backend == "disk":
        d = default_index_dir(settings.home)
        if rebuild:
            from ..forensics.index import clear_dir

            clear_dir(d)
        index = OutputIndex.open_dir(d)
    else:
        _fail("invalid_option", f"--index must be disk or redis, not {index_backend!r}", as_json)
    with _progress() as prog:
        t = prog.add_task("indexing ledger", total=None)
        added = index.update_from_ledger(ledger, progress=lambda n: prog.update(t, completed=n))
        prog.update(t, visible=False)
        t2 = prog.add_task("tracing", total=len(records))
        result = trace_records(records, index, keep_matches=report is not None,
                               progress=lambda n: prog.update(t2, completed=n))
    result["summary"]["index_added"] = added
    matches = result.pop("_matches", {})
    if report is not None:
        def original(rid: str) -> str | None:
            rec = ledger.get(rid)
            return rec.response_text if rec else None

        report.write_text(render_report(result, matches, original))
        result["summary"]["report"] = str(report)
    if as_json:
        emit(result, True)
        return
    s = result["summary"]
    table = Table(title=f"{s['derived']} of {s['records']} records derived from API outputs")
    table.add_column("org")
    table.add_column("records", justify="right")
    for o in s["orgs"]:
        table.add_row(str(o["org"]), str(o["records"]))
    err_console.print(table)


def _fail(code: str, message: str, as_json: bool) -> NoReturn:
    fail(GatewayError(message, code=code, status=400, type="invalid_request_error"), as_json)
    raise typer.Exit(1)  # pragma: no cover - fail() exits


def trace_eval(
    split: str = typer.Option("test", "--split", help="dev (tuning) or test (reporting)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus directory (default: ../shared/data if present, else the compact corpus)."),
    limit: int | None = typer.Option(None, "--limit", help="Use at most this many answers."),
    sweep: bool = typer.Option(False, "--sweep", help="Metrics per verification threshold (dev split only)."),
    seed: int = typer.Option(7, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recall, precision and correct-org rate of trace on adversarially transformed outputs."""
    from ..forensics.evaluate import evaluate

    if sweep and split != "dev":
        raise typer.BadParameter("--sweep is for the dev split only (never tune on the reported split)")
    res = evaluate(split=split, corpus_dir=corpus, seed=seed, limit=limit,
                   thresholds=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] if sweep else None,
                   log=lambda s: err_console.print(s))
    res.pop("misses", None)
    res.pop("false_positives", None)
    if as_json:
        emit(res, True)
        return
    table = Table(title=f"trace evaluation ({res['split']} split, {res['corpus']}, threshold {res['threshold']})")
    for col in ("threshold", "records", "positives", "recall", "precision", "correct org", "correct request"):
        table.add_column(col, justify="right")
    rows = res["per_threshold"] or {str(res["threshold"]): res}
    for t, m in rows.items():
        table.add_row(t, str(m["records"]), str(m["positives"]), f"{m['recall']:.4f}", f"{m['precision']:.4f}",
                      f"{m['correct_org']:.4f}", f"{m['correct_request']:.4f}")
    from rich.console import Console

    Console().print(table)
