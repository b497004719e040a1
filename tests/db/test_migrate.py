"""Packaged Alembic migrations: the schema they create, idempotence, concurrent upgrades."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from distillguard.db import schema
from distillguard.db.engine import dispose_all, get_engine, make_engine
from distillguard.db.migrate import MIGRATIONS_DIR, current_revision, downgrade, head_revision, upgrade


@pytest.fixture(autouse=True)
def _dispose():
    yield
    dispose_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/dg.sqlite"
    return request.getfixturevalue("postgres_url")


def _inspect(url: str) -> tuple[set[str], dict[str, set[str]]]:
    eng = make_engine(url)
    try:
        insp = sa.inspect(eng)
        tables = set(insp.get_table_names())
        idx = {t: {i["name"] for i in insp.get_indexes(t)} for t in tables}
        return tables, idx
    finally:
        eng.dispose()


def test_scripts_are_packaged_next_to_the_code():
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    assert head_revision() == "0001"


def test_upgrade_creates_every_table_of_the_schema(url):
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision()
    tables, idx = _inspect(url)
    assert set(schema.metadata.tables) | {"alembic_version"} == tables
    assert {"ix_ledger_org_ts", "ix_ledger_key_ts", "ix_ledger_ts"} <= idx["ledger"]
    with make_engine(url).connect() as c:
        assert c.execute(sa.select(schema.state_version)).all() == [(1, 0)]


def test_migration_matches_schema_py(url):
    upgrade(url)
    eng = make_engine(url)
    with eng.connect() as c:
        diffs = compare_metadata(MigrationContext.configure(c), schema.metadata)
    eng.dispose()
    assert diffs == []


def test_upgrade_twice_is_a_noop(url):
    upgrade(url)
    eng = make_engine(url)
    with eng.begin() as c:
        c.execute(sa.update(schema.state_version).values(version=7))
    upgrade(url)
    with eng.connect() as c:
        assert c.execute(sa.select(schema.state_version)).all() == [(1, 7)]
    eng.dispose()
    assert current_revision(url) == head_revision()


def test_downgrade_to_base_and_back(url):
    upgrade(url)
    downgrade(url, "base")
    assert current_revision(url) is None
    assert _inspect(url)[0] == {"alembic_version"}
    upgrade(url)
    assert current_revision(url) == head_revision()


def test_sqlite_foreign_keys_are_enforced(tmp_path):
    url = f"sqlite:///{tmp_path}/fk.sqlite"
    upgrade(url)
    with pytest.raises(sa.exc.IntegrityError), get_engine(url).begin() as c:
        c.execute(sa.insert(schema.projects).values(id="p", org_id="nope", name="x", created_at=0.0))


def test_in_memory_sqlite():
    upgrade("sqlite://")
    assert current_revision("sqlite://") == head_revision()
    with get_engine("sqlite://").connect() as c:
        assert c.execute(sa.select(schema.state_version.c.version)).scalar() == 0


CHILD = """
import sys, time
from distillguard.db.migrate import upgrade
t = float(sys.argv[2])
while time.time() < t:
    time.sleep(0.001)
upgrade(sys.argv[1])
"""


def test_sqlite_concurrent_upgrades_from_several_processes(tmp_path):
    url = f"sqlite:///{tmp_path}/race.sqlite"
    start = str(time.time() + 1.5)  # all children past their imports, then go together
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, url, start], stderr=subprocess.PIPE) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    assert current_revision(url) == head_revision()
    with make_engine(url).connect() as c:
        assert c.execute(sa.select(schema.state_version)).all() == [(1, 0)]


@pytest.mark.postgres
def test_postgres_concurrent_upgrades(postgres_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        try:
            barrier.wait()
            upgrade(postgres_url)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    eng = make_engine(postgres_url)
    with eng.connect() as c:
        assert c.execute(sa.select(schema.state_version)).all() == [(1, 0)]
    eng.dispose()
