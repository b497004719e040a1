"""Account model: orgs (the account a customer holds), keys, and the states an account moves through."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ..limits.base import LimitSpec


class OrgStatus(str, enum.Enum):
    PENDING = "pending"  # applied for Limited Access, awaiting review
    ACTIVE = "active"
    REQUIRES_CHANGES = "requires_changes"  # refused until the customer makes the change asked for
    SUSPENDED = "suspended"  # pending investigation; can be reinstated
    TERMINATED = "terminated"  # permanent
    REJECTED = "rejected"  # application refused; may be approved on appeal


# Which status changes an admin may make (from -> allowed targets).
TRANSITIONS: dict[OrgStatus, set[OrgStatus]] = {
    OrgStatus.PENDING: {OrgStatus.ACTIVE, OrgStatus.REJECTED, OrgStatus.TERMINATED},
    OrgStatus.REJECTED: {OrgStatus.ACTIVE, OrgStatus.TERMINATED},
    OrgStatus.ACTIVE: {OrgStatus.SUSPENDED, OrgStatus.REQUIRES_CHANGES, OrgStatus.TERMINATED},
    OrgStatus.REQUIRES_CHANGES: {OrgStatus.ACTIVE, OrgStatus.SUSPENDED, OrgStatus.TERMINATED},
    OrgStatus.SUSPENDED: {OrgStatus.ACTIVE, OrgStatus.REQUIRES_CHANGES, OrgStatus.TERMINATED},
    OrgStatus.TERMINATED: set(),
}


@dataclass(slots=True)
class Org:
    id: str
    name: str
    status: OrgStatus
    use_case: str | None
    purposes: list[str]
    status_reason: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "use_case": self.use_case,
            "purposes": list(self.purposes),
            "status_reason": self.status_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class ApiKey:
    id: str
    org_id: str
    project_id: str | None
    name: str | None
    hint: str
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org": self.org_id,
            "project": self.project_id,
            "name": self.name,
            "hint": self.hint,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "revoked": self.revoked,
        }


@dataclass(slots=True)
class Principal:
    """Who is calling: resolved from an API key on each request."""

    key: ApiKey
    org: Org
    key_limits: LimitSpec = field(default_factory=LimitSpec)
    org_limits: LimitSpec = field(default_factory=LimitSpec)
