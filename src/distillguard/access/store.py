"""Persistence of orgs, projects, keys and limits (SQLAlchemy Core; SQLite or Postgres)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from ..db import schema as t
from ..limits.base import LimitSpec
from .models import ApiKey, Org, OrgStatus

LIMIT_FIELDS = ("rpm", "tpm", "daily_tokens", "monthly_tokens")


def _org(row: Any) -> Org:
    m = row._mapping
    return Org(
        id=m["id"],
        name=m["name"],
        status=OrgStatus(m["status"]),
        use_case=m["use_case"],
        purposes=list(m["purposes"] or []),
        status_reason=m["status_reason"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _key(row: Any, prefix: str = "") -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m[prefix + "id"],
        org_id=m[prefix + "org_id"],
        project_id=m[prefix + "project_id"],
        name=m[prefix + "name"],
        hint=m[prefix + "hint"],
        created_at=m[prefix + "created_at"],
        revoked_at=m[prefix + "revoked_at"],
    )


class AccessStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        k = t.api_keys.alias("k")
        o = t.orgs
        self._lookup = (
            sa.select(
                *[c.label("k_" + c.name) for c in k.c],
                *o.c,
            )
            .select_from(k.join(o, k.c.org_id == o.c.id))
            .where(k.c.key_hash == sa.bindparam("h"))
        )

    # ---- versioning: every change that can affect authentication bumps it -----------------
    def _bump(self, conn: sa.Connection) -> None:
        conn.execute(t.state_version.update().where(t.state_version.c.id == 1).values(version=t.state_version.c.version + 1))

    def version(self) -> int:
        with self.engine.connect() as c:
            v = c.execute(sa.select(t.state_version.c.version).where(t.state_version.c.id == 1)).scalar()
        return int(v or 0)

    # ---- orgs ---------------------------------------------------------------------------
    def create_org(self, org_id: str, name: str, use_case: str | None, purposes: list[str], status: OrgStatus) -> Org:
        now = time.time()
        with self.engine.begin() as c:
            c.execute(
                t.orgs.insert().values(
                    id=org_id, name=name, status=status.value, use_case=use_case, purposes=purposes,
                    status_reason=None, created_at=now, updated_at=now,
                )
            )
            self._bump(c)
        org = self.get_org(org_id)
        assert org is not None
        return org

    def get_org(self, org_id: str) -> Org | None:
        with self.engine.connect() as c:
            row = c.execute(t.orgs.select().where(t.orgs.c.id == org_id)).first()
        return _org(row) if row else None

    def find_orgs_by_name(self, name: str) -> list[Org]:
        with self.engine.connect() as c:
            rows = c.execute(t.orgs.select().where(t.orgs.c.name == name).order_by(t.orgs.c.created_at)).all()
        return [_org(r) for r in rows]

    def list_orgs(self, status: OrgStatus | None = None) -> list[Org]:
        q = t.orgs.select().order_by(t.orgs.c.created_at, t.orgs.c.id)
        if status is not None:
            q = q.where(t.orgs.c.status == status.value)
        with self.engine.connect() as c:
            return [_org(r) for r in c.execute(q)]

    def set_status(self, org_id: str, status: OrgStatus, reason: str | None, expect: OrgStatus) -> bool:
        """Compare-and-set the status (so two admins can't race each other). False if it changed meanwhile."""
        with self.engine.begin() as c:
            res = c.execute(
                t.orgs.update()
                .where(t.orgs.c.id == org_id, t.orgs.c.status == expect.value)
                .values(status=status.value, status_reason=reason, updated_at=time.time())
            )
            if res.rowcount != 1:
                return False
            self._bump(c)
        return True

    # ---- projects -----------------------------------------------------------------------
    def create_project(self, project_id: str, org_id: str, name: str) -> dict[str, Any]:
        now = time.time()
        with self.engine.begin() as c:
            c.execute(t.projects.insert().values(id=project_id, org_id=org_id, name=name, created_at=now))
        return {"id": project_id, "org": org_id, "name": name, "created_at": now}

    def get_project(self, project_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(t.projects.select().where(t.projects.c.id == project_id)).first()
        if row is None:
            return None
        m = row._mapping
        return {"id": m["id"], "org": m["org_id"], "name": m["name"], "created_at": m["created_at"]}

    def list_projects(self, org_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(t.projects.select().where(t.projects.c.org_id == org_id).order_by(t.projects.c.created_at))
            return [{"id": r.id, "org": r.org_id, "name": r.name, "created_at": r.created_at} for r in rows]

    # ---- keys ---------------------------------------------------------------------------
    def create_key(self, key: ApiKey, key_hash: str) -> ApiKey:
        with self.engine.begin() as c:
            c.execute(
                t.api_keys.insert().values(
                    id=key.id, org_id=key.org_id, project_id=key.project_id, name=key.name,
                    key_hash=key_hash, hint=key.hint, created_at=key.created_at, revoked_at=None,
                )
            )
            self._bump(c)
        return key

    def get_key(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as c:
            row = c.execute(t.api_keys.select().where(t.api_keys.c.id == key_id)).first()
        return _key(row) if row else None

    def list_keys(self, org_id: str) -> list[ApiKey]:
        q = t.api_keys.select().where(t.api_keys.c.org_id == org_id).order_by(t.api_keys.c.created_at)
        with self.engine.connect() as c:
            return [_key(r) for r in c.execute(q)]

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as c:
            res = c.execute(
                t.api_keys.update()
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            if res.rowcount:
                self._bump(c)
        return bool(res.rowcount)

    def lookup(self, key_hash: str) -> tuple[ApiKey, Org, str] | None:
        """O(1) lookup through the unique index on key_hash. Returns (key, org, stored hash)."""
        with self.engine.connect() as c:
            row = c.execute(self._lookup, {"h": key_hash}).first()
        if row is None:
            return None
        return _key(row, "k_"), _org(row), row._mapping["k_key_hash"]

    # ---- limits -------------------------------------------------------------------------
    def get_limits(self, scope: str, scope_id: str) -> LimitSpec | None:
        with self.engine.connect() as c:
            row = c.execute(
                t.limits.select().where(t.limits.c.scope == scope, t.limits.c.scope_id == scope_id)
            ).first()
        if row is None:
            return None
        return LimitSpec(**{f: row._mapping[f] for f in LIMIT_FIELDS})

    def set_limits(self, scope: str, scope_id: str, spec: LimitSpec) -> LimitSpec:
        values = {f: getattr(spec, f) for f in LIMIT_FIELDS}
        with self.engine.begin() as c:
            res = c.execute(
                t.limits.update().where(t.limits.c.scope == scope, t.limits.c.scope_id == scope_id).values(**values)
            )
            if res.rowcount == 0:
                c.execute(t.limits.insert().values(scope=scope, scope_id=scope_id, **values))
            self._bump(c)
        return spec
