"""The entity a prediction is about (a customer, a user), sent hashed as ``ml.entity`` so the server can erase
everything stored about it (docs/privacy.md, "Erasure"). The value is hashed on the calling thread, once per
``with aither.entity(...)`` block, with the ``hash`` policy's keyed HMAC: the clear value never leaves the
process, and equal values give the same key wherever ``AITHER_HASH_KEY`` is the same.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from ._privacy._policy import ColumnPolicies, hash_key_from_env

__all__ = ["ENTITY", "entity", "entity_key"]

#: The hashed key of the entity of calls made in this context; read once per recorded call.
ENTITY: contextvars.ContextVar[str | None] = contextvars.ContextVar("aither_entity", default=None)


def entity_key(value: str | int) -> str:
    """The key ``value`` is sent and stored as (``h:`` and 16 hex characters): what the server's erasure
    endpoint takes. Raises :class:`aither.ConfigurationError` when ``AITHER_HASH_KEY`` is not set."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"an entity is a string or an integer, got {type(value).__name__}")
    key = hash_key_from_env()
    policies = ColumnPolicies({"entity": "hash"}, hash_key=key)  # raises PolicyError without a key
    return policies.hashed(str(value))


@contextlib.contextmanager
def entity(value: str | int) -> Iterator[str]:
    """Every prediction made in this block (by wrapped models, ``log_prediction``) carries ``value``'s key::

        with aither.entity(customer.id):
            model.predict(X)

    Needs ``AITHER_HASH_KEY`` (the server may then erase by the same value). Yields the key."""
    hashed = entity_key(value)
    token = ENTITY.set(hashed)
    try:
        yield hashed
    finally:
        ENTITY.reset(token)
