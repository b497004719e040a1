"""watermark embed / detect / eval (contracts §2): text on stdin, watermarked text or a verdict on stdout."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..config import load_settings
from ..services import open_store
from ..watermark import DEFAULT_THRESHOLD, Verdict, Watermarker
from .output import emit, err_console, handles_errors

watermark_app = typer.Typer(help="Keyed per-account text watermark.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
DEFAULT_CORPUS = Path("../shared/data")
CORPUS_OPT = typer.Option(
    None, "--corpus-dir", help="Full corpus (default ../shared/data when present, else the shipped compact corpus)."
)


def _watermarker(threshold: float = DEFAULT_THRESHOLD) -> tuple[Watermarker, object]:
    store = open_store(load_settings())
    secret = store.settings.secret
    assert secret is not None
    return Watermarker(secret.get_secret_value(), threshold=threshold), store


def _verdict_line(v: dict) -> str:
    who = f" → org {v['org']}" if v["org"] else ""
    return f"detected={v['detected']} p={v['p_value']:.3g} z={v['z']:.2f} bits scored={v['tokens_scored']}{who}"


@watermark_app.command("embed")
@handles_errors
def embed(org: str = typer.Option(..., "--org", help="Org whose key marks the text.")) -> None:
    """Read text on stdin, write it watermarked for ORG on stdout."""
    wm, store = _watermarker()
    org_id = store.access.resolve_org(org).id  # type: ignore[attr-defined]
    sys.stdout.write(wm.apply(sys.stdin.read(), org_id))
    sys.stdout.flush()


@watermark_app.command("detect")
@handles_errors
def detect(
    org: str | None = typer.Option(None, "--org", help="Test only this org's keys (default: every org)."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold", help="Detected when corrected p < this."),
    as_json: bool = JSON,
) -> None:
    """Read text on stdin; test it for the watermark of ORG, or of every org (Bonferroni-corrected)."""
    wm, store = _watermarker(threshold)
    access = store.access  # type: ignore[attr-defined]
    orgs = [access.resolve_org(org).id] if org else [o.id for o in access.list_orgs()]
    verdict: Verdict = wm.detect(sys.stdin.read(), orgs)
    emit(verdict.to_dict(), as_json, _verdict_line)


@watermark_app.command("eval")
def evaluate_cmd(
    corpus_dir: Path | None = CORPUS_OPT,
    n: int = typer.Option(200, "--n", help="Answers per length."),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Detection rates after attacks, false positives and quality on real answers; prints a table."""
    from ..watermark.evaluate import evaluate

    if corpus_dir is None and DEFAULT_CORPUS.is_dir():
        corpus_dir = DEFAULT_CORPUS
    if corpus_dir is not None and not corpus_dir.is_dir():
        raise typer.BadParameter(f"not a directory: {corpus_dir}", param_hint="--corpus-dir")
    err_console.print(f"corpus: {corpus_dir or 'shipped compact corpus'}")
    table = evaluate(corpus_dir, n=n, seed=seed, log=lambda s: err_console.print(s))
    sys.stdout.write(table.render() + "\n")


