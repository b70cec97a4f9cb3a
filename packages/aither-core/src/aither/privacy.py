"""Column policies and scrubbing, public for the server: it enforces an organisation's policy on what clients
send with the same parser, hashing and scrubbers the SDK applies before sending (docs/privacy.md), so a rule
means the same on both sides. The SDK's own use goes through ``aither.init(column_policies=...)``.
"""

from __future__ import annotations

from ._privacy import SCRUBBED_KINDS, WITHHELD, ColumnPolicies, PolicyError, Privacy, hash_key_from_env, scrub
from ._privacy._policy import HASH_KEY_VARIABLE, Action

__all__ = [
    "HASH_KEY_VARIABLE",
    "SCRUBBED_KINDS",
    "WITHHELD",
    "Action",
    "ColumnPolicies",
    "PolicyError",
    "Privacy",
    "hash_key_from_env",
    "scrub",
]
