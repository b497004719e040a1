"""Engines: SQLite pragmas for many threads and processes, Postgres pool options, the per-URL cache."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from distillguard.db.engine import dispose_all, get_engine, make_engine, sqlite_path


@pytest.fixture(autouse=True)
def _dispose():
    yield
    dispose_all()


def test_sqlite_pragmas_and_parent_dir(tmp_path):
    url = f"sqlite:///{tmp_path}/a/b/db.sqlite"
    eng = make_engine(url)
    with eng.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    assert (tmp_path / "a" / "b" / "db.sqlite").exists()
    eng.dispose()


def test_sqlite_path():
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert str(sqlite_path("sqlite:////x/y.sqlite")) == "/x/y.sqlite"


def test_get_engine_caches_per_url_and_dispose_all_forgets(tmp_path):
    a = get_engine(f"sqlite:///{tmp_path}/a.sqlite")
    assert get_engine(f"sqlite:///{tmp_path}/a.sqlite") is a
    assert get_engine(f"sqlite:///{tmp_path}/b.sqlite") is not a
    dispose_all()
    a2 = get_engine(f"sqlite:///{tmp_path}/a.sqlite")
    assert a2 is not a
    assert get_engine(sa.engine.make_url(f"sqlite:///{tmp_path}/a.sqlite")) is a2


def test_memory_sqlite_is_one_database_for_all_threads():
    eng = get_engine("sqlite://")
    with eng.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    seen: list[int] = []

    def work() -> None:
        with eng.connect() as c:
            seen.append(c.exec_driver_sql("SELECT count(*) FROM t").scalar())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [0]


def _make_table(url: str) -> sa.Engine:
    eng = get_engine(url)
    with eng.begin() as c:
        c.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who TEXT)")
    return eng


def test_sqlite_many_threads_write(tmp_path):
    eng = _make_table(f"sqlite:///{tmp_path}/t.sqlite")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                with eng.begin() as c:
                    c.execute(sa.text("INSERT INTO t (who) VALUES (:w)"), {"w": f"t{n}-{i}"})
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM t").scalar() == 400


CHILD = """
import sys
import sqlalchemy as sa
from distillguard.db.engine import make_engine
eng = make_engine(sys.argv[1])
for i in range(200):
    with eng.begin() as c:
        c.execute(sa.text("INSERT INTO t (who) VALUES (:w)"), {"w": sys.argv[2]})
        c.execute(sa.text("SELECT count(*) FROM t")).scalar()
"""


def test_sqlite_several_processes_write_without_locked_errors(tmp_path):
    url = f"sqlite:///{tmp_path}/p.sqlite"
    eng = _make_table(url)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, url, f"p{n}"], stderr=subprocess.PIPE) for n in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM t").scalar() == 600


@pytest.mark.postgres
def test_postgres_engine_options(postgres_url):
    eng = get_engine(postgres_url)
    assert eng.pool._pre_ping is True  # type: ignore[attr-defined]
    assert eng.pool.size() == 10  # type: ignore[attr-defined]
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT current_setting('application_name')")).scalar() == "distillguard"
        assert c.execute(sa.text("SELECT CAST(:j AS json)->>'a'"), {"j": '{"a": "b"}'}).scalar() == "b"
