"""Watermark keys: one server secret, one key per org and key version (HMAC), and the keyed channel hash."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


def org_key(secret: str, org_id: str, version: int = 1) -> bytes:
    """HMAC(secret, "wm:" + org_id [+ ":v" + version]); version 1 has no suffix."""
    msg = f"wm:{org_id}" if version == 1 else f"wm:{org_id}:v{version}"
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class OrgKey:
    """One key an org's text may carry: the org, the key version, and the key bytes."""

    org_id: str
    version: int
    key: bytes

    def choice(self, context: str, set_id: int, n: int) -> int:
        """The keyed ("green") variant index in [0, n) for a set in a context (n is 2 or 4)."""
        d = hashlib.blake2b(f"{set_id}\x1f{context}".encode(), key=self.key, digest_size=2).digest()
        return d[0] % n


def keys_for(secret: str, org_id: str, versions: int = 1, old_secrets: tuple[str, ...] = ()) -> list[OrgKey]:
    """Every key of an org that detection should try: versions 1..``versions`` of each secret, newest first."""
    out = []
    for s in (secret, *old_secrets):
        out.extend(OrgKey(org_id, v, org_key(s, org_id, v)) for v in range(versions, 0, -1))
    return out
