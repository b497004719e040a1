"""Alembic environment.

:func:`distillguard.db.migrate.upgrade` passes an open connection (already inside the transaction
that serialises concurrent upgrades) as ``config.attributes["connection"]``. Run by the ``alembic``
command instead (``alembic -c src/distillguard/migrations/alembic.ini upgrade head``), the URL
comes from ``sqlalchemy.url`` or ``DG_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context

from distillguard.db.schema import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ["DG_DATABASE_URL"]
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from distillguard.db.engine import make_engine

    url = config.get_main_option("sqlalchemy.url") or os.environ["DG_DATABASE_URL"]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
