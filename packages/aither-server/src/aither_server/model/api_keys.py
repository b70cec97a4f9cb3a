"""API keys: their format, hashing and scopes. Storage of the hashes lives in the store.

A key is ``aith_`` followed by 43 URL-safe characters of ``secrets.token_urlsafe(32)`` (256 bits). Keys are
stored only as their SHA-256: for a random 256-bit secret a slow password hash adds nothing, and a fast hash
keeps the lookup on every request cheap. Generated keys are never logged; the server prints the first admin
key once, on purpose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "Principal",
    "generate_key",
    "generate_key_id",
    "has_scope",
    "hash_key",
    "is_valid_key",
    "key_prefix",
    "parse_bearer",
]

KEY_PREFIX = "aith_"
#: ``admin`` implies ``read`` and ``write``.
SCOPES = ("read", "write", "admin")
_PREFIX_CHARS = 12
# A bootstrap key is chosen by a person, so accept any URL-safe secret of reasonable length.
_KEY = re.compile(r"aith_[A-Za-z0-9_\-]{8,200}")


@dataclasses.dataclass(frozen=True)
class Principal:
    """The key a request was authenticated with."""

    key_id: str
    name: str
    scopes: tuple[str, ...]

    @property
    def role(self) -> str:
        return "admin" if "admin" in self.scopes else "member"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def generate_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def is_valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_prefix(key: str) -> str:
    """What the API shows of a key: enough to recognise it, too little to use it."""
    return key[:_PREFIX_CHARS]


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def has_scope(scopes: tuple[str, ...], needed: str) -> bool:
    return needed in scopes or "admin" in scopes
