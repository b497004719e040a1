"""Composition root: builds the domain services from settings (used by the server and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .access import AccessService
from .access.watch import DbVersionWatcher, RedisVersionWatcher, StateWatcher
from .config import Settings, ensure_secrets
from .db.engine import get_engine
from .db.migrate import upgrade


def _redis_url(settings: Settings) -> str | None:
    return settings.redis_url.get_secret_value() if settings.redis_url else None


@dataclass
class Store:
    """What the CLI needs: the database and the account operations."""

    settings: Settings
    engine: sa.Engine
    access: AccessService
    extras: dict[str, Any] = field(default_factory=dict)


def open_store(settings: Settings, watcher: StateWatcher | None = None) -> Store:
    ensure_secrets(settings)
    url = settings.sqlalchemy_url()
    upgrade(url)
    engine = get_engine(url)
    assert settings.secret is not None
    access = AccessService(
        engine,
        settings.secret.get_secret_value(),
        org_defaults=settings.org_limits,
        key_defaults=settings.key_limits,
        watcher=watcher,
        redis_url=_redis_url(settings),
    )
    return Store(settings=settings, engine=engine, access=access)


def make_watcher(settings: Settings, engine: sa.Engine) -> StateWatcher:
    url = _redis_url(settings)
    return RedisVersionWatcher(engine, url) if url else DbVersionWatcher(engine)
