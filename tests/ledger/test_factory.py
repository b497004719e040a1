"""The ledger built from settings: journal under DG_HOME, the configured database and retention."""

from __future__ import annotations

from pathlib import Path

from distillguard.config import load_settings
from distillguard.db.engine import dispose_all
from distillguard.db.migrate import upgrade
from distillguard.ledger import writer_from_settings

from .conftest import make_record


def test_writer_from_settings(dg_home):
    settings = load_settings(ledger_store_bodies=False, ledger_batch_size=7, ledger_retention_days=30)
    upgrade(settings.sqlalchemy_url())
    w = writer_from_settings(settings)
    try:
        assert w.journal.directory == Path(dg_home) / "journal"
        assert w.batch_size == 7 and w.retention_days == 30 and w.store_bodies is False
        w.start()
        w.append(make_record(1))
        assert w.close()
        got = w.store.get("req_00000001")  # type: ignore[attr-defined]
        assert got is not None and got.request is None and got.replica == settings.replica_id
    finally:
        dispose_all()
