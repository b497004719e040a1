"""``distillguard trace DATASET``: which records of a dataset came from API outputs, and from whom.

Also ``trace eval`` (``trace_eval``): the labelled evaluation of forensics/evaluate.py as a table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn, Optional

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
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Processes matching records (default: cores)."),
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
    def original(rid: str) -> str | None:  # the stored answer a candidate is verified (aligned) against
        rec = ledger.get(rid)
        return rec.response_text if rec else None

    def originals(rids: list[str]) -> dict[str, str]:  # the same, one query per batch of candidates
        return {rid: rec.response_text for rid, rec in ledger.get_many(rids).items()}

    with _progress() as prog:
        t = prog.add_task("indexing ledger", total=None)
        added = index.update_from_ledger(ledger, progress=lambda n: prog.update(t, completed=n))
        prog.update(t, visible=False)
        t2 = prog.add_task("tracing", total=len(records))
        result = trace_records(records, index, keep_matches=report is not None, evidence=_evidence(settings, store, index),
                               originals_many=originals, progress=lambda n: prog.update(t2, completed=n),
                               workers=workers or os.cpu_count() or 1,
                               worker_init=lambda: store.engine.dispose(close=False))  # own connections after fork
    result["summary"]["index_added"] = added
    matches = result.pop("_matches", {})
    if report is not None:
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


def _evidence(settings: Any, store: Any, index: OutputIndex) -> list[Any]:
    """Prompt matches, and the watermark of every org (per record, and pooled per org over the dataset)."""
    from ..forensics.trace import prompt_evidence
    from ..forensics.wmevidence import WatermarkEvidence
    from ..watermark import Watermarker

    org_ids = [o.id for o in store.access.list_orgs()]
    return [prompt_evidence(index), WatermarkEvidence(Watermarker(settings.secret.get_secret_value()), org_ids)]


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
                   thresholds=[0.4, 0.5, 0.6, 0.7] if sweep else None,
                   gaps=[0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 1.0] if sweep else None,
                   log=lambda s: err_console.print(s))
    res.pop("misses", None)
    res.pop("false_positives", None)
    if as_json:
        emit(res, True)
        return
    table = Table(title=f"trace evaluation ({res['split']} split, {res['corpus']}, threshold {res['threshold']})")
    table.add_column("threshold/distinct/gaps", justify="right", no_wrap=True)
    for col in ("records", "positives", "recall", "precision", "correct org", "correct request"):
        table.add_column(col, justify="right")
    rows = res["per_threshold"] or {f"{res['threshold']}/{res['min_distinct']:g}/{res['max_gaps']:g}": res}
    rows = {**rows, "no alignment": res["without_alignment"]}
    for t, m in rows.items():
        table.add_row(t, str(m["records"]), str(m["positives"]), f"{m['recall']:.4f}", f"{m['precision']:.4f}",
                      f"{m['correct_org']:.4f}", f"{m['correct_request']:.4f}")
    from rich.console import Console

    Console().print(table)


def probe(
    endpoint: str | None = typer.Option(None, "--endpoint", help="Base URL of an OpenAI-compatible server (…/v1)."),
    model_file: Path | None = typer.Option(None, "--model-file", help="A local n-gram model file instead."),
    model: str | None = typer.Option(None, "--model", help="Model name to ask the endpoint for."),
    org: str | None = typer.Option(None, "--org", help="Test only this org's keys (default: every org)."),
    samples: int = typer.Option(200, "--samples", help="Generations to score."),
    reference_file: Path | None = typer.Option(
        None, "--reference-file",
        help="A clean n-gram model trained like the suspect: compare variant preferences (white-box with --model-file)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Test a suspect model for inherited watermarks (contracts §2); key from DG_PROBE_API_KEY if needed."""
    import os
    import random

    from ..forensics.radioactivity import (
        NgramLM,
        endpoint_generations,
        probe_models,
        probe_reference,
        probe_texts,
        sample_model,
    )
    from ..upstreams.corpus import answer_points, iter_corpus
    from ..watermark import Watermarker

    if (endpoint is None) == (model_file is None):
        _fail("invalid_option", "give exactly one of --endpoint and --model-file", as_json)
    settings = load_settings()
    store = open_store(settings)
    access = store.access  # type: ignore[attr-defined]
    orgs = [access.resolve_org(org).id] if org else [o.id for o in access.list_orgs()]
    assert settings.secret is not None
    wm = Watermarker(settings.secret.get_secret_value())
    reference = None
    if reference_file is not None:
        try:
            reference = NgramLM.load(reference_file)
        except (ValueError, OSError) as e:
            _fail("invalid_model", f"reference: {e}", as_json)
    if model_file is not None:
        try:
            suspect = NgramLM.load(model_file)
        except (ValueError, OSError) as e:
            _fail("invalid_model", str(e), as_json)
        if reference is not None:
            _print_probe(probe_models(suspect, reference, wm, orgs), as_json)
            return
        texts = sample_model(suspect, samples)
    else:
        prompts: list[str] = []
        for rec in iter_corpus(None):
            for ap in answer_points(rec):
                prompts += [m["content"] for m in ap.context[-1:] if m["role"] == "user"]
        random.Random(0).shuffle(prompts)
        texts = endpoint_generations(endpoint, prompts[:samples], model, os.environ.get("DG_PROBE_API_KEY"))  # type: ignore[arg-type]
    if reference is not None:
        res = probe_reference(texts, sample_model(reference, samples), wm, orgs)
    else:
        res = probe_texts(texts, wm, orgs)
    _print_probe(res, as_json)


def _print_probe(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(res, True)
        return
    err_console.print(f"detected={res['detected']} org={res['org']} bits scored={res['tokens_scored']}")
    for r in res["orgs"][:10]:
        err_console.print(f"  {r['org']}: p={r['p_value']:.3g} z={r['z']}")


def probe_eval(
    clean_models: int = typer.Option(100, "--clean-models"),
    samples: int = typer.Option(1000, "--samples"),
    train_words: int = typer.Option(1_000_000, "--train-words", help="Words in each suspect's training corpus."),
    clean_words: int = typer.Option(1_000_000, "--clean-words", help="Words in each clean model's corpus."),
    null_groups: int = typer.Option(0, "--null-groups", help="Also test each clean model against this many other "
                                    "random 5-org key sets (more draws of the null, for the false-positive rate)."),
    corpus: Path | None = typer.Option(None, "--corpus"),
    seed: int = typer.Option(7, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Radioactivity on real trained n-gram LMs: p-value per watermarked share and test, clean-model false positives."""
    from ..forensics.evaluate import SHARED_DATA, load_points
    from ..forensics.radioactivity import evaluate

    if corpus is None and SHARED_DATA.is_dir():
        corpus = SHARED_DATA
    answers = [p.answer for p in load_points(corpus, "dev") if len(p.answer.split()) >= 20]
    res = evaluate(answers, clean_models=clean_models, samples=samples, seed=seed, train_words=train_words,
                   clean_words=clean_words, null_groups=null_groups,
                   log=lambda s: err_console.print(s))
    if as_json:
        emit(res, True)
        return
    table = Table(title="probe evaluation (word trigram LMs; p corrected over every org key)")
    for col in ("watermarked share", "train words", "black-box samples p", "reference (same corpus) p",
                "reference (independent) p", "bits scored (sample / ref / indep)"):
        table.add_column(col, justify="right")
    for r in res["rates"]:
        table.add_row(f"{r['rate']:.0%}", str(r["train_words"]), f"{r['p_value']:.3g}", f"{r['p_reference']:.3g}",
                      f"{r['p_reference_indep']:.3g}",
                      f"{r['tokens_scored']} / {r['bits_reference']} / {r['bits_reference_indep']}")
    from rich.console import Console

    Console().print(table)
    low, mins = res["clean_below_0.01_by_test"], res["clean_min_p_by_test"]
    Console().print(f"clean models ({res['clean_models']}) with corrected p < 0.01: " + "; ".join(
        f"{k} {low[k]} (min p {mins[k]:.3g})" for k in low if mins[k] is not None))
    if res["null_trials"]:
        nl = res["null_below_0.01_by_test"]
        Console().print(f"the same clean models against {res['null_groups']} other random 5-org key sets each "
                        f"({res['null_trials']} null draws per test), corrected p < 0.01: "
                        + "; ".join(f"{k} {v} ({v / res['null_trials']:.2%})" for k, v in nl.items()))
