"""Ledger fixtures: a migrated database of each kind and a store on it, and record factories."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from distillguard.db.engine import dispose_all, get_engine
from distillguard.db.migrate import upgrade
from distillguard.ledger.record import LedgerRecord
from distillguard.ledger.store import LedgerStore


def make_record(i: int, **kw: Any) -> LedgerRecord:
    base: dict[str, Any] = dict(
        id=f"req_{i:08d}",
        ts=1_700_000_000.0 + i,
        endpoint="/v1/chat/completions",
        status=200,
        org="org_a",
        key="key_a",
        project="proj_1",
        model="gpt-4o-mini",
        latency_ms=12.5,
        prompt_tokens=10,
        completion_tokens=20,
        ip="203.0.113.7",
        user_agent="OpenAI/Python 1.54.0",
        request={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]},
        response_text=f"answer {i}",
        finish_reason="stop",
    )
    base.update(kw)
    return LedgerRecord(**base)


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    upgrade(url)
    yield url
    dispose_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ledger.sqlite"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    yield url
    dispose_all()


@pytest.fixture
def store(db_url) -> LedgerStore:
    return LedgerStore(get_engine(db_url))


@pytest.fixture
def sqlite_store(sqlite_url) -> LedgerStore:
    return LedgerStore(get_engine(sqlite_url))
