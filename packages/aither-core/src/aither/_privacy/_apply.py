"""Privacy applied to what a span carries and to a reference: one object per client, on the worker thread.

``Privacy.features`` takes the rendered ``ml.features`` value (``{"sample": rows, "_meta": ...}``, a mapping,
a list or a string: docs/wire-contract.md) and returns what may leave the process. Column policies need
column names, so they apply to rows of mappings (tables, frames, dict inputs); strings anywhere in the sample
are scrubbed unless their column's policy is ``keep``. ``before_send`` runs last; when it raises, the span goes
without its features (closed on failure, never open).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._policy import ColumnPolicies
from ._scrub import scrub

__all__ = ["WITHHELD", "BeforeSend", "Privacy", "Redactions", "register_model_policies"]

logger = logging.getLogger("aither")

#: ``before_send(model_name, features) -> features or None`` (``None``: send no features for this span).
#: The user's function takes the features as it expects them: their type is its author's to name.
BeforeSend = Callable[[str, Any], object]
#: What :meth:`Privacy.features` answers when the span must go without ``ml.features``.
WITHHELD: Final = object()
#: The column name counted for strings that are not in a named column (a list of texts, a bare string).
UNNAMED = "-"
#: Types of values that scrubbing leaves as they are (exact types: a str subclass is still scrubbed).
_NOTHING_TO_SCRUB = frozenset({int, float, bool, type(None)})


#: Each wrapped model's own rules (``wrap(..., column_policies=)``), kept across ``init()`` calls: a model wrapped
#: before ``init()`` replaces the client keeps them.
_model_policies: dict[str, ColumnPolicies] = {}
_model_policies_lock = threading.Lock()


def register_model_policies(model: str, policies: ColumnPolicies) -> None:
    with _model_policies_lock:
        _model_policies[model] = policies


class Redactions:
    """Scrubbed values counted per model, column and kind (never the values). Written by the worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def add(self, model: str, column: str, counts: Mapping[str, int]) -> None:
        with self._lock:
            for kind, n in counts.items():
                key = (model, column, kind)
                self._counts[key] = self._counts.get(key, 0) + n

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{model: {column: {kind: count}}}``, as ``aither.stats()["redactions"]`` shows it."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        with self._lock:
            items = list(self._counts.items())
        for (model, column, kind), n in items:
            out.setdefault(model, {}).setdefault(column, {})[kind] = n
        return out


class Privacy:
    def __init__(
        self,
        policies: ColumnPolicies | None = None,
        *,
        scrub_values: bool = True,
        before_send: BeforeSend | None = None,
    ) -> None:
        if before_send is not None and not callable(before_send):
            raise TypeError(f"before_send must be callable, got {before_send!r}")
        self.policies = policies or ColumnPolicies()
        self.scrub_values = scrub_values
        self.before_send = before_send
        self.redactions = Redactions()
        self._models: dict[str, ColumnPolicies] = {}
        self._before_send_failed = False

    @property
    def active(self) -> bool:
        return bool(self.scrub_values or self.before_send or self.policies or self._models or _model_policies)

    def register(self, model: str, policies: ColumnPolicies | None) -> None:
        """More rules for ``model`` (a ``log_reference`` call's), on top of those it already has: ``init()``'s and
        its ``wrap(..., column_policies=)``'s."""
        if policies:
            self._models[model] = self.policies_for(model).merged(policies)

    def policies_for(self, model: str) -> ColumnPolicies:
        """``init()``'s rules, with the model's own (from ``wrap`` or this ``log_reference`` call) on top."""
        found = self._models.get(model)
        if found is not None:
            return found
        own = _model_policies.get(model)
        if own is None:
            return self.policies
        merged = self._models[model] = self.policies.merged(own)
        return merged

    def features(self, model: str, features: object) -> object:
        """The rendered ``ml.features`` of one span of ``model``, as it may leave the process; :data:`WITHHELD`
        when ``before_send`` declined (or failed): the span then goes without them."""
        if not self.active:
            return features
        policies = self.policies_for(model)
        counts: dict[tuple[str, str], int] = {}
        cleaned = self._value(features, policies, counts)
        for (column, kind), n in counts.items():
            self.redactions.add(model, column, {kind: n})
        if self.before_send is not None:
            try:
                sent = self.before_send(model, cleaned)
            except Exception:
                if not self._before_send_failed:
                    self._before_send_failed = True
                    logger.warning(
                        "aither: before_send raised; spans of that call are sent without features", exc_info=True
                    )
                return WITHHELD
            return WITHHELD if sent is None else sent
        return cleaned

    def row(self, row: Mapping[str, object], model: str) -> dict[str, object]:
        """One record of a reference, as :meth:`features` treats a sampled row (its redactions not counted)."""
        return self._record(row, self.policies_for(model), {}, set())

    def _value(self, features: object, policies: ColumnPolicies, counts: dict[tuple[str, str], int]) -> object:
        if isinstance(features, dict) and "sample" in features and isinstance(features.get("_meta"), dict):
            sample = features["sample"]
            dropped: set[str] = set()
            if isinstance(sample, list):
                sample = [self._row(row, policies, counts, dropped) for row in sample]
            else:
                sample = self._row(sample, policies, counts, dropped)
            meta = features["_meta"]
            if isinstance(meta.get("texts"), list):  # the texts behind text descriptors (docs/drift.md)
                meta = {**meta, "texts": self.scrubbed(meta["texts"], UNNAMED, counts)}
            if dropped:
                meta = dict(meta)
                for key in ("columns", "keys"):
                    if isinstance(meta.get(key), list):
                        meta[key] = [c for c in meta[key] if c not in dropped]
                if isinstance(meta.get("dtypes"), dict):
                    meta["dtypes"] = {c: d for c, d in meta["dtypes"].items() if c not in dropped}
            return {**features, "sample": sample, "_meta": meta}
        if isinstance(features, dict) and "_meta" not in features:
            return self._row(features, policies, counts, set())
        return self._row(features, policies, counts, set())

    def _row(
        self, row: object, policies: ColumnPolicies, counts: dict[tuple[str, str], int], dropped: set[str]
    ) -> object:
        if isinstance(row, dict):
            return self._record(row, policies, counts, dropped)
        return self.scrubbed(row, UNNAMED, counts)

    def _record(
        self, row: Mapping[str, object], policies: ColumnPolicies, counts: dict[tuple[str, str], int], dropped: set[str]
    ) -> dict[str, object]:
        if not policies and (not self.scrub_values or {type(v) for v in row.values()} <= _NOTHING_TO_SCRUB):
            # No column rules (the default) and no text to scrub: a row of numbers leaves as it is. This runs on
            # the worker for every sampled row, so it is one pass over the values' types.
            return dict(row)
        out: dict[str, object] = {}
        for column, value in row.items():
            action = policies.action(column) if policies else None
            if action is None:
                out[column] = self.scrubbed(value, column, counts)
            elif action.kind == "drop":
                dropped.add(column)
            elif action.kind == "keep":
                out[column] = value
            else:
                out[column] = policies.apply(action, value)
        return out

    def scrubbed_text(self, text: str, column: str, counts: dict[tuple[str, str], int]) -> str:
        """``text`` scrubbed (whether or not :attr:`scrub_values` is set); each redaction counted in ``counts``."""
        found: dict[str, int] = {}
        cleaned = scrub(text, found)
        for kind, n in found.items():
            counts[(column, kind)] = counts.get((column, kind), 0) + n
        return cleaned

    def scrubbed(self, value: object, column: str, counts: dict[tuple[str, str], int]) -> object:
        """``value`` scrubbed when it is a string (or a list of them); each redaction counted in ``counts``."""
        if not self.scrub_values:
            return value
        if isinstance(value, str):
            return self.scrubbed_text(value, column, counts)
        if isinstance(value, list):
            return [self.scrubbed(item, column, counts) for item in value]
        return value
