"""A server privacy policy: what it says, parsed and checked with the SDK's own parser (``aither.privacy``).

A policy maps column names, globs (``customer_*``) or regular expressions (``re:^card_.*``) to the SDK's
actions (``drop``, ``hash``, ``round``, ``round:N``, ``bucket:W``, ``keep``) or to ``refuse``, the server's own:
a span whose features carry a refused column is not stored at all. ``scrub`` turns the SDK's scrubbers on for
every string value. The organisation's policy (model ``*``) applies to every model; a model's own rules are
layered on top of it, as a ``wrap()``'s are on ``init()``'s in the SDK.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from aither.privacy import Action, ColumnPolicies, PolicyError, hash_key_from_env

__all__ = ["ORG", "REFUSE", "REFUSED", "EffectivePolicy", "PolicyError", "PolicySpec", "effective", "parse_spec"]

#: The model name of the organisation's policy (no model may be named ``*``: it matches every one).
ORG = "*"
REFUSE = "refuse"
_MAX_RULES = 1000


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """A policy as an administrator wrote it (stored as JSON): ``{"columns": {...}, "scrub": bool}``."""

    columns: dict[str, str]
    scrub: bool | None
    """``None``: not said (a model's policy then takes the organisation's)."""

    def to_json(self) -> dict[str, object]:
        return {"columns": dict(self.columns), "scrub": self.scrub}


def parse_spec(body: object, hash_key: bytes | None = None) -> PolicySpec:
    """``body`` checked; :class:`PolicyError` (a 400) for an unknown action, a bad pattern, ``hash`` without the
    server's ``AITHER_HASH_KEY``."""
    if not isinstance(body, Mapping):
        raise PolicyError('a policy is an object: {"columns": {"email": "drop"}, "scrub": true}')
    unknown = set(body) - {"columns", "scrub"}
    if unknown:
        raise PolicyError(f"unknown policy fields: {sorted(unknown)} (a policy has columns and scrub)")
    columns = body.get("columns") or {}
    scrub = body.get("scrub")
    if scrub is not None and not isinstance(scrub, bool):
        raise PolicyError("scrub must be true, false or null")
    if not isinstance(columns, Mapping) or len(columns) > _MAX_RULES:
        raise PolicyError(f"columns must be an object of at most {_MAX_RULES} rules")
    spec = PolicySpec({str(k): v.strip().lower() if isinstance(v, str) else v for k, v in columns.items()}, scrub)
    # Every rule checked now, not at ingest; ``hash`` needs the server's key.
    _compile(spec, hash_key_from_env() if hash_key is None else hash_key, strict=True)
    return spec


def _compile(
    spec: PolicySpec, hash_key: bytes | None, *, strict: bool = False
) -> tuple[ColumnPolicies, ColumnPolicies]:
    """(the SDK actions, the refused columns as a matcher whose every action is ``drop``). Unless ``strict``, a
    ``hash`` rule with no key (a server restarted without ``AITHER_HASH_KEY``) drops its column: closed, never
    stored in clear."""
    actions = {k: v for k, v in spec.columns.items() if v != REFUSE}
    if not strict and not hash_key:
        actions = {k: "drop" if v == "hash" else v for k, v in actions.items()}
    refused = {k: "drop" for k, v in spec.columns.items() if v == REFUSE}
    return ColumnPolicies(actions, hash_key=hash_key), ColumnPolicies(refused)


#: What :meth:`EffectivePolicy.rule` answers for a refused column.
REFUSED = Action("refuse")
_MAX_CACHED = 10_000


class EffectivePolicy:
    """What applies to one model: the organisation's rules with the model's on top. Each column's rule, and
    each hashed value, is worked out once and kept (columns and categories repeat from span to span)."""

    def __init__(self, actions: ColumnPolicies, refused: ColumnPolicies, scrub: bool) -> None:
        self.actions = actions
        self.refused = refused
        self.scrub = scrub
        self.columns = bool(actions or refused)
        """Whether any column has a rule."""
        self._rules: dict[str, Action | None] = {}
        self._hashed: dict[str, str] = {}

    def __bool__(self) -> bool:
        return self.columns or self.scrub

    def rule(self, column: str) -> Action | None:
        """``column``'s action, :data:`REFUSED`, or ``None`` (no rule)."""
        try:
            return self._rules[column]
        except KeyError:
            pass
        found = REFUSED if self.refused and self.refused.action(column) is not None else None
        if found is None and self.actions:
            found = self.actions.action(column)
        if len(self._rules) < _MAX_CACHED:
            self._rules[column] = found
        return found

    def refuses(self, column: str) -> bool:
        return self.rule(column) is REFUSED

    def hashed(self, value: str) -> str:
        """The ``hash`` action's value of a string, computed once per distinct value (bounded)."""
        try:
            return self._hashed[value]
        except KeyError:
            pass
        result = self.actions.hashed(value)
        if len(self._hashed) < _MAX_CACHED:
            self._hashed[value] = result
        return result


def effective(org: PolicySpec | None, model: PolicySpec | None, hash_key: bytes | None) -> EffectivePolicy:
    actions, refused = ColumnPolicies(), ColumnPolicies()
    scrub = False
    for spec in (org, model):
        if spec is None:
            continue
        own_actions, own_refused = _compile(spec, hash_key)
        actions, refused = actions.merged(own_actions), refused.merged(own_refused)
        if spec.scrub is not None:
            scrub = spec.scrub
    return EffectivePolicy(actions, refused, scrub)
