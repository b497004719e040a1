"""``distillguard ledger ...``: the durable request ledger."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..config import load_settings
from ..ledger.export import export_jsonl
from ..ledger.store import LedgerStore
from ..services import open_store
from .output import emit, err_console

ledger_app = typer.Typer(help="The request ledger.", no_args_is_help=True)


@ledger_app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="Traffic JSONL to write ('-' for stdout)."),
    org: Optional[str] = typer.Option(None, "--org", help="Only this org."),
    since: Optional[float] = typer.Option(None, help="Only records at or after this epoch time."),
    until: Optional[float] = typer.Option(None, help="Only records before this epoch time."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write the ledger as traffic records (contracts §1)."""
    store = open_store(load_settings())
    ledger = LedgerStore(store.engine)
    if str(out) == "-":
        n = export_jsonl(ledger, sys.stdout, since=since, until=until, org=org)
    else:
        n = export_jsonl(ledger, out, since=since, until=until, org=org)
    if as_json and str(out) != "-":
        emit({"records": n, "out": str(out)}, True)
    else:
        err_console.print(f"exported {n} records to {out}")
