"""Column policies: which action each column's values get before they leave the process.

Rules map a column name, a glob (``customer_*``) or a regular expression (``re:^card_.*``) to an action:
``drop`` (the column is not sent), ``hash`` (a keyed HMAC-SHA256 of the value: equal values stay equal, so
categorical drift, data quality and segments still work), ``round`` / ``round:N`` (N decimals),
``bucket:W`` (the value floored to a multiple of W), ``keep`` (sent as is, not scrubbed). An exact name wins
over patterns; patterns are tried in the order given. Nulls stay null under every action, so null rates are
still measured.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .._errors import ConfigurationError

__all__ = ["HASH_KEY_VARIABLE", "Action", "ColumnPolicies", "PolicyError", "hash_key_from_env"]

#: The environment variable holding the key of ``hash`` policies (any string; keep it secret and stable).
HASH_KEY_VARIABLE = "AITHER_HASH_KEY"
#: Hex characters of the HMAC kept: 64 bits, enough that distinct values of a column do not collide.
_HASH_CHARS = 16
_PATTERN_CHARS = frozenset("*?[")


class PolicyError(ConfigurationError, ValueError):
    """A column policy that cannot be applied: an unknown action, a bad pattern, ``hash`` without a key."""


@dataclass(frozen=True)
class Action:
    kind: str
    """``drop``, ``hash``, ``round``, ``bucket`` or ``keep``."""
    amount: float = 0.0
    """Decimals of ``round``; width of ``bucket``."""


_DROP = Action("drop")
_HASH = Action("hash")
_KEEP = Action("keep")


def hash_key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    raw = (os.environ if environ is None else environ).get(HASH_KEY_VARIABLE, "")
    return raw.encode("utf-8") if raw else None


def _parse_action(column: str, spec: object) -> Action:
    if not isinstance(spec, str):
        raise PolicyError(
            f"the policy of {column!r} must be a string such as 'drop', 'hash' or 'round:2', got {spec!r}"
        )
    kind, _, arg = spec.strip().lower().partition(":")
    if kind in ("drop", "hash", "keep") and not arg:
        return {"drop": _DROP, "hash": _HASH, "keep": _KEEP}[kind]
    if kind == "round":
        if not arg:
            return Action("round", 0)
        if arg.isdigit() and int(arg) <= 15:
            return Action("round", int(arg))
    if kind == "bucket" and arg:
        try:
            width = float(arg)
        except ValueError:
            width = math.nan
        if math.isfinite(width) and width > 0:
            return Action("bucket", width)
    raise PolicyError(
        f"unknown policy {spec!r} for {column!r}: use drop, hash, keep, round, round:N (0-15 decimals) or "
        "bucket:W (a positive width)"
    )


class ColumnPolicies:
    """Rules, validated when given (an unknown action fails at ``init()``/``wrap()``, not at the first send)."""

    def __init__(self, rules: Mapping[str, str] | None = None, *, hash_key: bytes | None = None) -> None:
        if rules is not None and not isinstance(rules, Mapping):
            raise PolicyError(f"column policies must map column names or patterns to actions, got {rules!r}")
        self._exact: dict[str, Action] = {}
        self._patterns: list[tuple[re.Pattern[str], Action]] = []
        for key, spec in (rules or {}).items():
            if not isinstance(key, str) or not key:
                raise PolicyError(f"a column policy's key must be a non-empty string, got {key!r}")
            action = _parse_action(key, spec)
            if key.startswith("re:"):
                try:
                    self._patterns.append((re.compile(key[3:]), action))
                except re.error as exc:
                    raise PolicyError(f"bad regular expression in column policy {key!r}: {exc}") from None
            elif _PATTERN_CHARS & set(key):
                self._patterns.append((re.compile(fnmatch.translate(key)), action))
            else:
                self._exact[key] = action
        if any(a.kind == "hash" for a in [*self._exact.values(), *(a for _, a in self._patterns)]) and not hash_key:
            raise PolicyError(
                f"a 'hash' column policy needs a key: set {HASH_KEY_VARIABLE} in the environment (the same value "
                "everywhere the model and its reference are logged, so equal values hash alike)"
            )
        self._hash_key = hash_key or b""
        self._cache: dict[str, Action | None] = {}

    def __bool__(self) -> bool:
        return bool(self._exact or self._patterns)

    def merged(self, override: ColumnPolicies) -> ColumnPolicies:
        """These rules with ``override``'s on top (a model's rules over ``init()``'s)."""
        merged = ColumnPolicies(hash_key=self._hash_key or override._hash_key)
        merged._exact = {**self._exact, **override._exact}
        merged._patterns = [*override._patterns, *self._patterns]
        merged._hash_key = override._hash_key or self._hash_key
        return merged

    def action(self, column: str) -> Action | None:
        """The action for ``column``; ``None`` when no rule names it (its strings are scrubbed)."""
        try:
            return self._cache[column]
        except KeyError:
            pass
        found = self._exact.get(column)
        if found is None:
            found = next((action for pattern, action in self._patterns if pattern.fullmatch(column)), None)
        if len(self._cache) < 10_000:  # columns are few; a runaway set of names must not grow memory
            self._cache[column] = found
        return found

    def apply(self, action: Action, value: object) -> object:
        """``value`` after ``action`` (``drop`` is the caller's: the column is removed); :meth:`hashed` is the
        ``hash`` action's text of a value known not to be None."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return value
        if action.kind == "hash":
            return self.hashed(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return value
        return self.number(action, value)

    def hashed(self, value: object) -> str:
        """``value`` (not None) as the ``hash`` action writes it: ``h:`` and the keyed digest of its text."""
        canonical = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        digest = hmac.new(self._hash_key, canonical.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "h:" + digest.hexdigest()[:_HASH_CHARS]

    def number(self, action: Action, value: float) -> float:
        """A finite number after a ``round`` or ``bucket`` action (any other action leaves it as it is)."""
        if action.kind == "round":
            return round(value, int(action.amount)) if action.amount else round(value)
        if action.kind == "bucket":
            bucketed = math.floor(value / action.amount) * action.amount
            return int(bucketed) if float(bucketed).is_integer() and isinstance(value, int) else bucketed
        return value
