"""Access service: authenticates API keys and carries out every account operation.

The HTTP admin API and the CLI both call these methods, so a suspension means the same thing
whichever way it was made. Authentication results are cached per key hash and the cache is
dropped whenever the shared ``state_version`` moves (see ``watch.py``), so a state change takes
effect on the next request, on every replica.
"""

from __future__ import annotations

import time
from typing import Iterable

import sqlalchemy as sa

from ..config import LimitValues
from ..errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from ..limits.base import LimitSpec
from . import keys as K
from .models import TRANSITIONS, ApiKey, Org, OrgStatus, Principal
from .store import AccessStore
from .watch import DbVersionWatcher, StateWatcher, publish_change, touch_signal

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def _spec(v: LimitValues) -> LimitSpec:
    return LimitSpec(rpm=v.rpm, tpm=v.tpm, daily_tokens=v.daily_tokens, monthly_tokens=v.monthly_tokens)


class AccessService:
    def __init__(
        self,
        engine: sa.Engine,
        server_secret: str,
        *,
        org_defaults: LimitValues | None = None,
        key_defaults: LimitValues | None = None,
        watcher: StateWatcher | None = None,
        redis_url: str | None = None,
        cache_size: int = 100_000,
    ) -> None:
        self.store = AccessStore(engine)
        self._secret = server_secret
        self._org_defaults = _spec(org_defaults or LimitValues())
        self._key_defaults = _spec(key_defaults or LimitValues())
        self.watcher: StateWatcher = watcher or DbVersionWatcher(engine)
        self._redis_url = redis_url
        self._cache: dict[str, Principal] = {}
        self._cache_version = -1
        self._cache_size = cache_size

    # ---- authentication (hot path) ------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Principal:
        """Resolve an ``Authorization`` header to a principal allowed to call the API, or raise."""
        raw = _bearer(authorization)
        if not K.looks_like_key(raw):
            raise AuthenticationFailed(f"Incorrect API key provided: {K.key_hint(raw)}. You can find your API key in the admin console.")
        h = K.hash_key(self._secret, raw)
        version = self.watcher.current()
        if version != self._cache_version:
            self._cache.clear()
            self._cache_version = version
        principal = self._cache.get(h)
        if principal is None:
            found = self.store.lookup(h)
            if found is None or not K.hashes_equal(found[2], h):
                raise AuthenticationFailed(
                    f"Incorrect API key provided: {K.key_hint(raw)}. You can find your API key in the admin console."
                )
            key, org, _ = found
            principal = Principal(
                key=key,
                org=org,
                key_limits=self.store.get_limits("key", key.id) or self._key_defaults,
                org_limits=self.store.get_limits("org", org.id) or self._org_defaults,
            )
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[h] = principal
        _check_allowed(principal)
        return principal

    # ---- Limited Access ---------------------------------------------------------------
    def apply(self, name: str, use_case: str | None = None, purposes: Iterable[str] = ()) -> Org:
        name = (name or "").strip()
        if not name:
            raise InvalidRequest("org name must not be empty", param="name")
        org = self.store.create_org(K.new_id("org"), name, use_case, list(purposes), OrgStatus.PENDING)
        self._changed()
        return org

    def approve(self, org_id: str) -> Org:
        return self._transition(org_id, OrgStatus.ACTIVE, None)

    def reject(self, org_id: str, reason: str) -> Org:
        return self._transition(org_id, OrgStatus.REJECTED, _need(reason, "reason"))

    def suspend(self, org_id: str, reason: str) -> Org:
        return self._transition(org_id, OrgStatus.SUSPENDED, _need(reason, "reason"))

    def reinstate(self, org_id: str) -> Org:
        org = self.get_org(org_id)
        if org.status not in (OrgStatus.SUSPENDED, OrgStatus.REQUIRES_CHANGES):
            raise Conflict(
                f"org {org_id} is {org.status.value}; only suspended or requires_changes orgs can be reinstated",
                code="invalid_state_transition",
            )
        return self._transition(org_id, OrgStatus.ACTIVE, None)

    def terminate(self, org_id: str, reason: str) -> Org:
        return self._transition(org_id, OrgStatus.TERMINATED, _need(reason, "reason"))

    def require_changes(self, org_id: str, message: str) -> Org:
        return self._transition(org_id, OrgStatus.REQUIRES_CHANGES, _need(message, "message"))

    def _transition(self, org_id: str, target: OrgStatus, reason: str | None) -> Org:
        org = self.get_org(org_id)
        if target not in TRANSITIONS[org.status]:
            raise Conflict(
                f"org {org_id} is {org.status.value}; it cannot become {target.value}",
                code="invalid_state_transition",
            )
        if not self.store.set_status(org_id, target, reason, expect=org.status):
            raise Conflict(f"org {org_id} changed concurrently; retry", code="concurrent_update")
        self._changed()
        return self.get_org(org_id)

    # ---- reads --------------------------------------------------------------------------
    def get_org(self, org_id: str) -> Org:
        org = self.store.get_org(org_id)
        if org is None:
            raise NotFound(f"No org with id '{org_id}'", code="org_not_found", param="org")
        return org

    def resolve_org(self, ref: str) -> Org:
        """An org by id, or by name when that name is unique."""
        org = self.store.get_org(ref)
        if org is not None:
            return org
        named = self.store.find_orgs_by_name(ref)
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise Conflict(f"{len(named)} orgs are named '{ref}'; use the org id", code="ambiguous_org")
        raise NotFound(f"No org with id or name '{ref}'", code="org_not_found", param="org")

    def list_orgs(self, status: str | None = None) -> list[Org]:
        return self.store.list_orgs(OrgStatus(status) if status else None)

    def org_details(self, org_id: str) -> dict:
        org = self.get_org(org_id)
        d = org.to_dict()
        d["keys"] = [k.to_dict() for k in self.store.list_keys(org.id)]
        d["projects"] = self.store.list_projects(org.id)
        d["limits"] = self.limits_dict("org", org.id)
        return d

    # ---- projects and keys ------------------------------------------------------------
    def create_project(self, org_id: str, name: str) -> dict:
        org = self.get_org(org_id)
        return self.store.create_project(K.new_id("proj"), org.id, _need(name, "name"))

    def create_key(self, org_id: str, name: str | None = None, project_id: str | None = None) -> tuple[ApiKey, str]:
        """Create a key; returns (key record, secret). The secret is never stored nor shown again."""
        org = self.get_org(org_id)
        if org.status == OrgStatus.TERMINATED:
            raise Conflict(f"org {org_id} is terminated", code="account_terminated")
        if project_id is not None:
            proj = self.store.get_project(project_id)
            if proj is None or proj["org"] != org.id:
                raise NotFound(f"No project '{project_id}' in org {org.id}", code="project_not_found", param="project")
        secret = K.generate_key()
        key = ApiKey(
            id=K.new_id("key"), org_id=org.id, project_id=project_id, name=name,
            hint=K.key_hint(secret), created_at=time.time(), revoked_at=None,
        )
        self.store.create_key(key, K.hash_key(self._secret, secret))
        self._changed()
        return key, secret

    def revoke_key(self, key_id: str) -> ApiKey:
        key = self.store.get_key(key_id)
        if key is None:
            raise NotFound(f"No key with id '{key_id}'", code="key_not_found", param="key")
        self.store.revoke_key(key_id)
        self._changed()
        revoked = self.store.get_key(key_id)
        assert revoked is not None
        return revoked

    # ---- limits ---------------------------------------------------------------------------
    def set_limits(self, scope: str, scope_id: str, **values: int | None) -> dict:
        if scope == "org":
            self.get_org(scope_id)
        elif scope == "key":
            if self.store.get_key(scope_id) is None:
                raise NotFound(f"No key with id '{scope_id}'", code="key_not_found", param="key")
        else:
            raise InvalidRequest("scope must be 'org' or 'key'", param="scope")
        for name, v in values.items():
            if v is not None and v < 0:
                raise InvalidRequest(f"{name} must be >= 0", param=name)
        current = self.store.get_limits(scope, scope_id) or (self._org_defaults if scope == "org" else self._key_defaults)
        merged = {f: getattr(current, f) for f in ("rpm", "tpm", "daily_tokens", "monthly_tokens")}
        merged.update({k: v for k, v in values.items() if v is not None})
        self.store.set_limits(scope, scope_id, LimitSpec(**merged))
        self._changed()
        return self.limits_dict(scope, scope_id)

    def set_limits_for(self, *, org: str | None = None, key: str | None = None, **values: int | None) -> dict:
        """Set limits of exactly one of an org (id or unique name) or a key."""
        if (org is None) == (key is None):
            raise InvalidRequest("give exactly one of 'org' or 'key'", param="org")
        if org is not None:
            return self.set_limits("org", self.resolve_org(org).id, **values)
        assert key is not None
        return self.set_limits("key", key, **values)

    def limits_dict(self, scope: str, scope_id: str) -> dict:
        spec = self.store.get_limits(scope, scope_id) or (self._org_defaults if scope == "org" else self._key_defaults)
        return {"scope": scope, "id": scope_id, "rpm": spec.rpm, "tpm": spec.tpm,
                "daily_tokens": spec.daily_tokens, "monthly_tokens": spec.monthly_tokens}

    # ---- internals --------------------------------------------------------------------------
    def _changed(self) -> None:
        self._cache.clear()
        self._cache_version = -1
        version = self.store.version()
        touch_signal(self.store.engine, version)
        self.watcher.notify(version)
        publish_change(self._redis_url, version)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationFailed(_NO_KEY, code="missing_api_key")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationFailed(
            "Malformed Authorization header: expected 'Bearer YOUR_KEY'.", code="invalid_authorization_header"
        )
    return value.strip()


def _need(value: str | None, param: str) -> str:
    if value is None or not str(value).strip():
        raise InvalidRequest(f"'{param}' is required", param=param, code="missing_required_parameter")
    return str(value).strip()


def _check_allowed(p: Principal) -> None:
    if p.key.revoked:
        raise AuthenticationFailed(f"The API key {p.key.hint} has been revoked.", code="invalid_api_key")
    org = p.org
    s = org.status
    if s is OrgStatus.ACTIVE:
        return
    if s is OrgStatus.PENDING:
        raise PermissionDenied(
            "Your organization's Limited Access application is pending review. You will be able to use the API "
            "once it is approved.",
            code="application_pending",
        )
    if s is OrgStatus.REJECTED:
        raise PermissionDenied(
            f"Your organization's Limited Access application was rejected: {org.status_reason}",
            code="application_rejected",
        )
    if s is OrgStatus.REQUIRES_CHANGES:
        raise PermissionDenied(
            f"Your organization must make changes before it can use the API again: {org.status_reason}",
            code="requires_changes",
        )
    if s is OrgStatus.SUSPENDED:
        raise PermissionDenied(
            "Your organization's access has been suspended pending investigation of a possible violation of the "
            f"terms of use. Reason: {org.status_reason}",
            code="account_suspended",
        )
    raise PermissionDenied(
        f"Your organization's access has been terminated for violating the terms of use. Reason: {org.status_reason}",
        code="account_terminated",
    )
