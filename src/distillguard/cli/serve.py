"""``distillguard serve``: run the gateway with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..config import ensure_secrets, load_settings
from ..logs import configure
from .output import err_console


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config file (else DG_CONFIG)."),
    workers: int = typer.Option(1, help="Worker processes (use DG_REDIS_URL so limits are shared)."),
) -> None:
    """Run the gateway: public API under /v1, admin API under /admin, /metrics, /healthz, /readyz."""
    import uvicorn

    if config is not None:
        os.environ["DG_CONFIG"] = str(config.resolve())
    settings = load_settings()
    configure(settings.log_level, settings.log_json)
    _, token_created = ensure_secrets(settings)
    if token_created:
        assert settings.admin_token is not None
        err_console.print(
            "[bold]Admin token created[/bold] (stored in "
            f"{settings.home / 'admin_token'}; shown once):\n{settings.admin_token.get_secret_value()}"
        )
    err_console.print(f"distillguard listening on http://{host}:{port}  (ledger: {_safe_url(settings)})")
    kwargs = dict(host=host, port=port, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=10)
    if workers > 1:
        if not settings.redis_url:
            err_console.print("[yellow]warning[/yellow]: several workers without DG_REDIS_URL enforce limits per worker")
        uvicorn.run("distillguard.http.app:create_app", factory=True, workers=workers, **kwargs)  # type: ignore[arg-type]
    else:
        from ..http.app import create_app

        uvicorn.run(create_app(settings), **kwargs)  # type: ignore[arg-type]


def _safe_url(settings) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy.engine import make_url

    return make_url(settings.sqlalchemy_url()).render_as_string(hide_password=True)
