"""``feature_names`` given to ``wrap``: the positional column names (``"0".."n-1"``) of a sampled input replaced
by the caller's names, on the worker, in the sample's rows and in its schema (``_meta.columns`` / ``dtypes``).

``log_reference(..., feature_names=)`` names its columns with the same rule (``_columns.named``), so both sides
of a drift comparison carry the same names.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._captured import Captured, render
from ._columns import named
from ._schema import schema_meta

__all__ = ["named_features"]

# A wide schema's hash -> its renamed columns and dtypes, learned from the span that carried it in full.
_renamed: dict[tuple[str, tuple[str, ...]], tuple[list[str], list[str]]] = {}


def named_features(features: Captured, feature_names: tuple[str, ...]) -> Captured:
    """``features`` rendered with ``feature_names`` (one tuple more on the caller's thread)."""
    return Captured(_render_named, (features, feature_names), features.rows, features.nbytes)


def _render_named(data: tuple[Captured, tuple[str, ...]]) -> object:
    features, feature_names = data
    value = render(features)
    if not isinstance(value, dict):
        return value
    sample = value.get("sample")
    meta = value.get("_meta")
    if isinstance(sample, list):
        value["sample"] = [named(row, feature_names) if isinstance(row, Mapping) else row for row in sample]
    elif isinstance(sample, Mapping):
        value["sample"] = named(sample, feature_names)
    if isinstance(meta, dict):
        value["_meta"] = _named_meta(meta, feature_names)
    return value


def _named_meta(meta: dict[str, object], feature_names: tuple[str, ...]) -> dict[str, object]:
    meta = dict(meta)  # the samplers share one _meta between spans of a schema: never edit it in place
    columns, dtypes, digest = meta.pop("columns", None), meta.pop("dtypes", None), meta.pop("schema", None)
    if isinstance(columns, list) and isinstance(dtypes, Mapping):
        names = list(named(dict.fromkeys(map(str, columns)), feature_names))
        kinds = [str(dtypes.get(str(c), "")) for c in columns]
        if isinstance(digest, str):
            if len(_renamed) >= 1024:
                _renamed.clear()
            _renamed[(digest, feature_names)] = (names, kinds)
    elif isinstance(digest, str) and (digest, feature_names) in _renamed:
        names, kinds = _renamed[(digest, feature_names)]
    else:
        if digest is not None:
            meta["schema"] = digest
        return meta
    meta.update(schema_meta(("named", feature_names, tuple(names), tuple(kinds)), names, kinds))
    if "keys" in meta and isinstance(meta["keys"], list):
        meta["keys"] = list(named(dict.fromkeys(map(str, meta["keys"])), feature_names))
    return meta
