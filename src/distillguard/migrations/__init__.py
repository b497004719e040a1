"""Alembic migrations of the relational store; run them with :func:`distillguard.db.migrate.upgrade`."""
