"""All tables, in SQLAlchemy Core. Alembic migrations (``distillguard/migrations``) create them.

Every timestamp is seconds since the epoch as a float (UTC), the unit of the traffic format.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

orgs = Table(
    "orgs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    # pending | active | requires_changes | suspended | terminated | rejected
    Column("status", String(32), nullable=False),
    Column("use_case", Text, nullable=True),
    Column("purposes", JSON, nullable=False, default=list),
    Column("status_reason", Text, nullable=True),  # reason / required change shown to the customer
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("project_id", String(64), ForeignKey("projects.id"), nullable=True),
    Column("name", String(255), nullable=True),
    # HMAC-SHA256(server secret, key) hex; unique index gives the O(1) lookup
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),  # "dg-abcd…wxyz" for humans; not enough to use
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

limits = Table(
    "limits",
    metadata,
    Column("scope", String(8), primary_key=True),  # "org" | "key"
    Column("scope_id", String(64), primary_key=True),
    Column("rpm", BigInteger, nullable=True),
    Column("tpm", BigInteger, nullable=True),
    Column("daily_tokens", BigInteger, nullable=True),
    Column("monthly_tokens", BigInteger, nullable=True),
)

# One row, bumped on every change that affects authentication (status, keys, limits), so
# replicas that cache accounts can tell their cache is stale.
state_version = Table(
    "state_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("org", String(64), nullable=True),
    Column("key", String(64), nullable=True),
    Column("project", String(64), nullable=True),
    Column("model", String(255), nullable=True),
    Column("endpoint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("ip", String(64), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("request", JSON, nullable=True),
    Column("response_text", Text, nullable=True),
    Column("finish_reason", String(32), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("replica", String(128), nullable=True),
)
Index("ix_ledger_org_ts", ledger.c.org, ledger.c.ts)
Index("ix_ledger_key_ts", ledger.c.key, ledger.c.ts)
Index("ix_ledger_ts", ledger.c.ts)
