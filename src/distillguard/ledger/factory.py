"""Build the ledger from settings: store on the configured database, journal under DG_HOME."""

from __future__ import annotations

from ..config import Settings
from ..db.engine import get_engine
from .store import LedgerStore
from .writer import LedgerWriter


def journal_dir(settings: Settings) -> str:
    return str(settings.home / "journal")


def writer_from_settings(settings: Settings, store: LedgerStore | None = None) -> LedgerWriter:
    """A writer (not started) for ``settings``; run migrations before starting it."""
    if store is None:
        store = LedgerStore(get_engine(settings.sqlalchemy_url()))
    return LedgerWriter(
        store,
        journal_dir(settings),
        settings.replica_id,
        batch_size=settings.ledger_batch_size,
        flush_interval_s=settings.ledger_flush_interval_s,
        fsync=settings.ledger_fsync,
        store_bodies=settings.ledger_store_bodies,
        retention_days=settings.ledger_retention_days,
    )
