"""org / key / limits commands (contracts §3). They write the same store as ``serve`` uses."""

from __future__ import annotations

from typing import Any, Optional

import typer

from ..config import load_settings
from ..services import Store, open_store
from .output import emit, handles_errors

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")

org_app = typer.Typer(help="Orgs and Limited Access applications.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
limits_app = typer.Typer(help="Rate limits and token quotas.", no_args_is_help=True)


def _store() -> Store:
    return open_store(load_settings())


def _org_line(o: dict[str, Any]) -> str:
    reason = f" — {o['status_reason']}" if o.get("status_reason") else ""
    return f"{o['id']}  {o['name']}  [bold]{o['status']}[/bold]{reason}"


@org_app.command("create")
@handles_errors
def org_create(
    name: str,
    use_case: Optional[str] = typer.Option(None, "--use-case", help="Declared use case of the application."),
    purpose: list[str] = typer.Option([], "--purpose", help="Declared purpose (repeatable)."),
    as_json: bool = JSON,
) -> None:
    """Create an org: a Limited Access application, pending review."""
    emit(_store().access.apply(name, use_case, purpose).to_dict(), as_json, _org_line)


def _status_cmd(name: str, doc: str, arg: str | None) -> None:
    def cmd(org: str, as_json: bool, value: str | None) -> None:
        acc = _store().access
        oid = acc.resolve_org(org).id
        fn = getattr(acc, name.replace("-", "_"))
        out = fn(oid, value) if arg else fn(oid)
        emit(out.to_dict(), as_json, _org_line)

    if arg:
        @handles_errors
        def with_arg(org: str, value: str = typer.Option(..., f"--{arg}"), as_json: bool = JSON) -> None:
            cmd(org, as_json, value)

        with_arg.__doc__ = doc
        org_app.command(name)(with_arg)
    else:
        @handles_errors
        def without(org: str, as_json: bool = JSON) -> None:
            cmd(org, as_json, None)

        without.__doc__ = doc
        org_app.command(name)(without)


_status_cmd("approve", "Approve an application: the org's keys start working.", None)
_status_cmd("reject", "Reject an application.", "reason")
_status_cmd("suspend", "Suspend an org pending investigation (every replica, next request).", "reason")
_status_cmd("reinstate", "Reinstate a suspended org (or one that made the required changes).", None)
_status_cmd("terminate", "Terminate an org permanently.", "reason")
_status_cmd("require-changes", "Refuse requests with MESSAGE until the org makes the change.", "message")


@org_app.command("list")
@handles_errors
def org_list(status: Optional[str] = typer.Option(None, help="Only orgs in this status."), as_json: bool = JSON) -> None:
    """List orgs."""
    orgs = [o.to_dict() for o in _store().access.list_orgs(status)]
    emit(orgs, as_json, lambda os_: "\n".join(_org_line(o) for o in os_) or "no orgs")


@org_app.command("show")
@handles_errors
def org_show(org: str, as_json: bool = JSON) -> None:
    """Show an org with its keys, projects, limits and status."""
    acc = _store().access
    emit(acc.org_details(acc.resolve_org(org).id), as_json)


@org_app.command("project")
@handles_errors
def org_project(org: str, name: str = typer.Option(..., "--name"), as_json: bool = JSON) -> None:
    """Create a project in an org."""
    acc = _store().access
    emit(acc.create_project(acc.resolve_org(org).id, name), as_json)


@key_app.command("create")
@handles_errors
def key_create(
    org: str = typer.Option(..., "--org"),
    name: Optional[str] = typer.Option(None, "--name"),
    project: Optional[str] = typer.Option(None, "--project"),
    as_json: bool = JSON,
) -> None:
    """Create an API key. The secret is printed here once and never again."""
    acc = _store().access
    key, secret = acc.create_key(acc.resolve_org(org).id, name, project)
    emit({"id": key.id, "key": secret, "org": key.org_id, "name": key.name, "project": key.project_id}, as_json,
         lambda d: f"{d['id']} (org {d['org']})\n{d['key']}\nStore this key now: it is not shown again.")


@key_app.command("revoke")
@handles_errors
def key_revoke(key_id: str, as_json: bool = JSON) -> None:
    """Revoke a key (refused from the next request on)."""
    emit(_store().access.revoke_key(key_id).to_dict(), as_json)


@limits_app.command("set")
@handles_errors
def limits_set(
    org: Optional[str] = typer.Option(None, "--org"),
    key: Optional[str] = typer.Option(None, "--key"),
    rpm: Optional[int] = typer.Option(None, "--rpm", min=0),
    tpm: Optional[int] = typer.Option(None, "--tpm", min=0),
    daily_tokens: Optional[int] = typer.Option(None, "--daily-tokens", min=0),
    monthly_tokens: Optional[int] = typer.Option(None, "--monthly-tokens", min=0),
    as_json: bool = JSON,
) -> None:
    """Set limits of an org (--org) or a key (--key); unspecified values are kept."""
    out = _store().access.set_limits_for(org=org, key=key, rpm=rpm, tpm=tpm, daily_tokens=daily_tokens,
                                        monthly_tokens=monthly_tokens)
    emit(out, as_json)
