"""Settings: one YAML file (``DG_CONFIG`` or ``serve --config``) plus ``DG_*`` environment variables.

Environment variables override the file. Secrets (server secret, admin token, database URLs) are
never taken from command-line flags. ``DG_SECRET`` and ``DG_ADMIN_TOKEN`` are generated into
``DG_HOME`` on first use when not given.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class ModelRoute(BaseModel):
    """A model clients may ask for, and the upstream that serves it."""

    name: str
    upstream: Literal["replay", "openai"] = "replay"
    base_url: str | None = None  # only from config, never from a request
    api_key_env: str | None = None
    upstream_model: str | None = None  # name sent upstream; defaults to `name`
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    latency_ms: float = 0.0  # replay only: simulated time to first token
    chunk_delay_ms: float = 0.0  # replay only: simulated delay between stream chunks
    encoding: str | None = None  # tiktoken encoding; derived from the model name when unset
    kind: Literal["chat", "embedding"] = "chat"
    watermark: bool = True  # mark this model's answers with the per-account watermark

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return v.rstrip("/") if v else v


DEFAULT_MODELS: list[ModelRoute] = [
    ModelRoute(name="gpt-4o-mini", upstream="replay"),
    ModelRoute(name="gpt-4o", upstream="replay"),
    ModelRoute(name="gpt-3.5-turbo-instruct", upstream="replay"),
    ModelRoute(name="text-embedding-3-small", upstream="replay", kind="embedding"),
]


class LimitValues(BaseModel):
    """Limits applied when an org or key has none of its own. ``None`` means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DG_", extra="ignore", env_nested_delimiter="__")

    home: Path = Field(default_factory=lambda: Path(os.path.expanduser("~/.distillguard")))
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    nats_url: str | None = None
    nats_stream: str = "DG_USAGE"  # JetStream stream of usage events (subjects <prefix>.<org>)
    nats_subject_prefix: str = "dg.usage"
    admin_token: SecretStr | None = None
    secret: SecretStr | None = None
    config: Path | None = None

    models: list[ModelRoute] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    org_limits: LimitValues = Field(default_factory=lambda: LimitValues(rpm=600, tpm=2_000_000))
    key_limits: LimitValues = Field(default_factory=LimitValues)

    detection: bool = True  # online distillation detection on live traffic (signals in the admin API)
    detection_target_fpr: float = 0.001  # account-level false-positive rate the flag threshold is calibrated for
    detection_ring_interval_s: float = 60.0  # online ring scan every this many seconds (0: no online rings)
    watermark: bool = True  # per-account output watermark on every answer (see also ModelRoute.watermark)
    watermark_exempt_orgs: list[str] = Field(default_factory=list)  # org ids whose answers stay unmarked
    max_body_bytes: int = 2_000_000
    trust_forwarded_for: bool = False  # take the client IP from X-Forwarded-For (behind a trusted proxy only)
    default_max_tokens: int = 1024  # reserved when a request gives no max_tokens
    ledger_store_bodies: bool = True  # keep request bodies and response text in the ledger
    ledger_retention_days: int | None = None  # None keeps records forever
    ledger_batch_size: int = 256
    ledger_flush_interval_s: float = 0.2
    ledger_fsync: Literal["never", "batch", "always"] = "never"  # "never" survives SIGKILL; power loss needs more
    corpus_dir: Path | None = None  # full corpus (e.g. ../shared/data) instead of the shipped compact one
    replica_id: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    log_level: str = "INFO"
    log_json: bool = False
    metrics: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    # ---- derived values -------------------------------------------------------------------
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.home / 'distillguard.sqlite'}"

    def route(self, name: str) -> ModelRoute | None:
        for m in self.models:
            if m.name == name:
                return m
        return None


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``DG_CONFIG`` (or passed as ``config=``)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("config") or os.environ.get("DG_CONFIG")
        if not path:
            return {}
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config file {p} must hold a mapping at the top level")
        return data


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings: explicit overrides > DG_* env > YAML file."""
    if config is not None:
        overrides["config"] = Path(config)
    return Settings(**overrides)


def _read_or_create(path: Path, make: Any) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    try:
        os.write(fd, value.encode())
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return value


def ensure_secrets(settings: Settings) -> tuple[bool, bool]:
    """Fill ``secret`` and ``admin_token`` from DG_HOME, generating them on first use.

    Returns (secret_created, admin_token_created) so the caller can print a new admin token once.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    created = [False, False]
    if settings.secret is None:
        p = settings.home / "secret"
        created[0] = not p.exists()
        settings.secret = SecretStr(_read_or_create(p, lambda: secrets.token_urlsafe(48)))
    if settings.admin_token is None:
        p = settings.home / "admin_token"
        created[1] = not p.exists()
        settings.admin_token = SecretStr(_read_or_create(p, lambda: "dgadm-" + secrets.token_urlsafe(32)))
    return created[0], created[1]
