"""Relational storage shared by the account store and the ledger (SQLite by default, Postgres at scale)."""
