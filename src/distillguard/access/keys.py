"""API key material: generation, keyed hashing, display hints. Secrets never leave this module in logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "dg-"
KEY_BYTES = 32  # >= 32 random bytes
_KEY_RE = re.compile(r"^dg-[A-Za-z0-9_-]{43,128}$")


def generate_key() -> str:
    """A new secret key: ``dg-`` + 32 random bytes, base64url without padding (43 chars)."""
    raw = secrets.token_bytes(KEY_BYTES)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def looks_like_key(value: str) -> bool:
    return bool(_KEY_RE.match(value))


def hash_key(server_secret: str, key: str) -> str:
    """HMAC-SHA256(server secret, key) as hex: what the store keeps and indexes."""
    return hmac.new(server_secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def key_hint(key: str) -> str:
    """What humans may see of a key: ``dg-abcd…wxyz`` (not enough to use it)."""
    return f"{key[:7]}…{key[-4:]}" if len(key) > 12 else "dg-…"


def redact(text: str) -> str:
    """Mask anything that looks like a distillguard key or a bearer token inside free text."""
    text = re.sub(r"dg-[A-Za-z0-9_-]{8,}", lambda m: key_hint(m.group(0)), text)
    return re.sub(r"(?i)(bearer\s+)[^\s,;]+", r"\1[redacted]", text)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
