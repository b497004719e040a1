"""Printing results: one JSON document on stdout with --json, readable text otherwise; errors to stderr."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console

from ..errors import GatewayError

err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def emit(obj: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()
        return
    if text is not None:
        Console().print(text(obj), highlight=False)
    else:
        Console().print_json(json.dumps(obj, default=str))


def fail(err: GatewayError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(err.body()) + "\n")
    err_console.print(f"[red]error[/red] ({err.code}): {err.message}")
    raise typer.Exit(1)


def handles_errors(fn: F) -> F:
    """Turn domain errors into a clean message (and a JSON error with --json) with exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GatewayError as e:
            fail(e, bool(kwargs.get("as_json")))

    return wrapper  # type: ignore[return-value]
