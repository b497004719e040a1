"""Entry point of the ``distillguard`` command."""

from __future__ import annotations

import typer

from .admin import key_app, limits_app, org_app
from .demo import demo
from .detect import detect
from .ledger import ledger_app
from .serve import serve
from .simulate import simulate
from .trace import probe, probe_eval, trace, trace_eval
from .watermark import watermark_app

app = typer.Typer(
    name="distillguard",
    help="OpenAI-compatible API gateway that enforces terms of use against model distillation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.command("demo")(demo)
app.command("simulate")(simulate)
app.command("detect")(detect)
app.command("trace")(trace)
app.command("trace-eval")(trace_eval)
app.command("probe")(probe)
app.command("probe-eval")(probe_eval)
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="key")
app.add_typer(limits_app, name="limits")
app.add_typer(ledger_app, name="ledger")
app.add_typer(watermark_app, name="watermark")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
