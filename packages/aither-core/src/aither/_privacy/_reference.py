"""The same privacy for a reference as for live samples: ``aither.log_reference`` passes its data through here
before profiling, so a hashed column is profiled as hashed values (its drift compares like with like), a
dropped column is never profiled, and strings are scrubbed as the worker scrubs sampled ones."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TypeVar

from .._types import is_pandas_frame, is_polars_frame
from ._apply import Privacy

__all__ = ["private_table"]

_Column = TypeVar("_Column")
_TEXT_DTYPES = ("object", "string", "str", "String", "Utf8")


def private_table(data: object, privacy: Privacy, model: str) -> object:
    """``data`` as it may leave the process. Tables (pandas, polars, a dict of columns, records) are transformed;
    other inputs (arrays, tensors, texts) are returned as they are: their columns are derived, so the caller
    leaves the dropped ones out of the profiles by name."""
    if is_pandas_frame(data):
        if not data.columns.is_unique:
            return data  # refused by name where the reference is profiled (repeated columns are ambiguous)
        columns = {str(c): data[c] for c in data.columns}
        names, changed = _columns(columns, privacy, model, lambda c: c.tolist(), lambda c: str(c.dtype))
        out = data.drop(columns=[c for c in data.columns if str(c) not in names])
        for name, values in changed.items():
            out[name] = values
        return out
    if is_polars_frame(data):
        columns = {str(c): data[c] for c in data.columns}
        names, changed = _columns(columns, privacy, model, lambda c: c.to_list(), lambda c: str(c.dtype))
        import polars as pl

        return pl.DataFrame({n: changed[n] if n in changed else data[n] for n in names})
    if isinstance(data, Mapping):
        names, changed = _columns(dict(data), privacy, model, list, lambda c: "object")
        return {n: changed.get(n, data[n]) for n in names}
    if isinstance(data, list) and data and all(isinstance(row, Mapping) for row in data):
        return [privacy.row(dict(row), model) for row in data]
    return data


def _columns(
    columns: dict[str, _Column],
    privacy: Privacy,
    model: str,
    to_list: Callable[[_Column], list[object]],
    dtype_of: Callable[[_Column], str],
) -> tuple[list[str], dict[str, list[object]]]:
    """(the kept column names in order, the transformed columns' new values)."""
    policies = privacy.policies_for(model)
    kept: list[str] = []
    changed: dict[str, list[object]] = {}
    for name, column in columns.items():
        action = policies.action(name) if policies else None
        if action is not None and action.kind == "drop":
            continue
        kept.append(name)
        if action is not None and action.kind == "keep":
            continue
        if action is not None:
            changed[name] = _each_distinct(to_list(column), functools.partial(policies.apply, action))
        elif privacy.scrub_values and dtype_of(column) in _TEXT_DTYPES:
            scrub = functools.partial(privacy.scrubbed, column=name, counts={})
            changed[name] = _each_distinct(to_list(column), scrub)
    return kept, changed


def _each_distinct(values: list[object], transform: Callable[[object], object]) -> list[object]:
    """``transform`` of each value, computed once per distinct value: a reference's categorical column of a
    million rows holds a few hundred (the same result as transforming every row, at a fraction of the cost)."""
    done: dict[object, object] = {}
    out = []
    for value in values:
        try:
            out.append(done[value])
        except KeyError:
            out.append(done.setdefault(value, transform(value)))
        except TypeError:  # unhashable (a list): transformed where it stands
            out.append(transform(value))
    return out
