"""Orgs, projects, API keys, Limited Access applications and account states."""

from .models import ApiKey, Org, OrgStatus, Principal
from .service import AccessService

__all__ = ["AccessService", "ApiKey", "Org", "OrgStatus", "Principal"]
