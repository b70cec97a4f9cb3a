"""What leaves the process: column policies (drop, hash, round, bucket, keep), scrubbing of personal data out of
sampled strings, and a ``before_send`` hook, applied on the worker to each span's sampled rows and, identically,
by ``aither.log_reference`` to the reference before it is profiled (docs/privacy.md)."""

from ._apply import WITHHELD, Privacy, Redactions, register_model_policies
from ._policy import ColumnPolicies, PolicyError, hash_key_from_env
from ._scrub import SCRUBBED_KINDS, scrub

__all__ = [
    "SCRUBBED_KINDS",
    "WITHHELD",
    "ColumnPolicies",
    "PolicyError",
    "Privacy",
    "Redactions",
    "hash_key_from_env",
    "register_model_policies",
    "scrub",
]
