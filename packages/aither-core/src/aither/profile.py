"""Column profiles: mergeable Apache DataSketches sketches with counts, nulls, min, max and dtype.

A profile describes one column of a data set: a numeric column by a KLL quantiles sketch (``k`` =
:data:`KLL_K`, normalised rank error about 1.3%), a categorical one by a frequent-items sketch (exact while
the column has at most 0.75 * 2 ** :data:`FREQUENT_LG_MAX` distinct values). Profiles of the same kind merge,
so the server keeps one per hour and adds hours at query time. ``aither.log_reference`` profiles a whole
reference set with these; the server profiles the sampled rows of live traffic with the same code, so both
sides of a drift comparison are built alike.

Public (``aither.profile``) because the server reads what the SDK sends with the same code: the profiles, and
:func:`output_value`, how a row of a model's output becomes the one value its prediction profile counts. numpy and
datasketches are imported inside the functions: ``import aither`` never imports them.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sized
from typing import TYPE_CHECKING, TypeGuard

from ._answers import integer, number
from ._types import is_pandas_frame, is_pandas_series, is_polars_frame, is_polars_series

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from datasketches import frequent_strings_sketch, kll_doubles_sketch

    from ._types import FloatArray

__all__ = [
    "CATEGORICAL",
    "FREQUENT_LG_MAX",
    "KLL_K",
    "NUMERIC",
    "Profile",
    "merge",
    "output_value",
    "profile_column",
    "profile_table",
    "profile_values",
]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: KLL's accuracy parameter: the default of DataSketches, rank error about 1.65 / k ** 0.96 (1.3%).
KLL_K = 200
#: log2 of the frequent-items map: 1,024 slots, at most 768 distinct values counted exactly.
FREQUENT_LG_MAX = 10


@dataclasses.dataclass
class Profile:
    """One column's profile. ``sketch`` is the serialised DataSketches sketch (KLL or frequent strings)."""

    kind: str
    dtype: str
    count: int
    nulls: int
    minimum: float | None
    maximum: float | None
    sketch: bytes

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "count": self.count,
            "nulls": self.nulls,
            "min": self.minimum,
            "max": self.maximum,
            "sketch": base64.b64encode(self.sketch).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Profile:
        kind = data["kind"]
        if kind != NUMERIC and kind != CATEGORICAL:
            raise ValueError(f"kind must be {NUMERIC!r} or {CATEGORICAL!r}, got {kind!r}")
        minimum, maximum, sketch = data.get("min"), data.get("max"), data["sketch"]
        if not isinstance(sketch, (str, bytes)):
            raise TypeError(f"sketch must be base64 text, got {type(sketch).__name__}")
        return cls(
            kind,
            str(data.get("dtype") or ""),
            integer(data["count"]),
            integer(data.get("nulls") or 0),
            None if minimum is None else number(minimum),
            None if maximum is None else number(maximum),
            base64.b64decode(sketch, validate=True),
        )

    def kll(self) -> kll_doubles_sketch:
        import datasketches

        return datasketches.kll_doubles_sketch.deserialize(self.sketch)

    def frequent(self) -> frequent_strings_sketch:
        import datasketches

        return datasketches.frequent_strings_sketch.deserialize(self.sketch)


def _numeric_profile(values: FloatArray, dtype: str, nulls: int) -> Profile:
    """A profile of finite float64 values (a numpy array)."""
    import datasketches
    import numpy as np

    sketch = datasketches.kll_doubles_sketch(KLL_K)
    minimum: float | None = None
    maximum: float | None = None
    if len(values):
        sketch.update(np.require(values, np.float64, ["C", "W"]))  # the binding takes writable C arrays only
        minimum, maximum = float(values.min()), float(values.max())
    return Profile(NUMERIC, dtype, len(values), nulls, minimum, maximum, sketch.serialize())


def _categorical_profile(counts: Iterable[tuple[str, int]], dtype: str, nulls: int) -> Profile:
    import datasketches

    sketch = datasketches.frequent_strings_sketch(FREQUENT_LG_MAX)
    total = 0
    for item, weight in counts:
        sketch.update(item, weight)
        total += weight
    return Profile(CATEGORICAL, dtype, total, nulls, None, None, sketch.serialize())


def _category(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def profile_column(values: object, dtype: str | None = None) -> Profile:
    """Profile one whole column: a numpy array, a pandas or polars Series, or a list. Vectorised: a million
    values take milliseconds (numeric: one KLL update of the array; categorical: one count per distinct value).
    """
    import numpy as np

    if is_pandas_series(values) or is_polars_series(values):
        dtype = dtype or str(values.dtype)
        counted = _counted_series(values, dtype)
        if counted is not None:
            return counted
        values = values.to_numpy()
    array = np.asarray(values)
    dtype = dtype or str(array.dtype)
    if array.dtype.kind in "iuf":
        floats = array.astype(np.float64, copy=False).ravel()
        finite = np.isfinite(floats)
        kept = floats if finite.all() else floats[finite]
        return _numeric_profile(kept, dtype, int(floats.size - kept.size))
    flat = array.ravel()
    if flat.dtype.kind == "O":
        present = [v for v in flat.tolist() if not _is_null(v)]
        nulls = flat.size - len(present)
        if present and all(_is_number(v) for v in present):
            return _numeric_profile(np.asarray(present, dtype=np.float64), dtype, nulls)
        flat = np.asarray([_category(v) for v in present], dtype=object)
    else:
        nulls = 0
    items, counts = np.unique(flat.astype(str), return_counts=True)
    return _categorical_profile(zip(items.tolist(), counts.tolist(), strict=True), dtype, nulls)


def _counted_series(series: pd.Series | pl.Series, dtype: str) -> Profile | None:
    """A categorical pandas or polars Series profiled from its own value counts (C speed, no Python loop)."""
    if is_pandas_series(series):
        import pandas as pd

        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            return None
        nulls = int(series.isna().sum())
        counts = series.value_counts(dropna=True)
        object_dtype = pd.api.types.is_object_dtype(series.dtype)
        if object_dtype and len(counts) and all(_is_number(v) for v in counts.index[:100]):
            return None  # an object column of numbers is numeric
        pairs = zip(map(_category, counts.index.tolist()), counts.tolist(), strict=True)
        return _categorical_profile(pairs, dtype, nulls)
    if is_polars_series(series):
        if series.dtype.is_numeric():
            return None
        nulls = int(series.null_count())
        counts = series.drop_nulls().value_counts()
        pairs = zip(map(_category, counts[:, 0].to_list()), counts[:, 1].to_list(), strict=True)
        return _categorical_profile(pairs, dtype, nulls)
    return None


def _is_null(value: object) -> bool:
    if isinstance(value, str):
        return value in _NULL_STRINGS
    # Only strings are looked up: a list or dict value (a nested sample) is not hashable, and is no null.
    return value is None or (isinstance(value, float) and not math.isfinite(value))


# NaN and the infinities arrive as these strings in JSON samples (the wire contract's encoding).
_NULL_STRINGS = frozenset({"NaN", "Infinity", "-Infinity"})


_NUMBER_TYPES = frozenset({int, float})


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def output_value(value: object) -> object:
    """A row of a model's output as one value: a row of class probabilities by its arg-max class, a
    ``{"label", "score"}`` dict by its label, anything else as it is. The SDK's profiles of predictions and the
    server's drift, quality and prediction pages read an output row alike through this."""
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return max(range(len(value)), key=value.__getitem__)
    if isinstance(value, dict):
        return value.get("label")
    return value


def profile_values(values: list[object], dtype: str = "") -> list[Profile]:
    """Profiles of a few sampled values of one column (decoded JSON): numbers in a numeric profile, strings and
    booleans in a categorical one (a column that mixes them gets both), nulls counted in the first."""
    import numpy as np

    kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES and kinds:  # the common case, vectorised: plain numbers (NaN and inf are nulls)
        array = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(array)
        kept = array if finite.all() else array[finite]
        return [_numeric_profile(kept, dtype, int(array.size - kept.size))]
    if kinds == {str}:  # categories, with the wire's spellings of NaN and the infinities as nulls
        counted = Counter(value for value in values if isinstance(value, str))
        nulls = sum(counted.pop(null, 0) for null in _NULL_STRINGS)
        if counted:
            return [_categorical_profile(counted.items(), dtype, nulls)]
    numbers: list[float] = []
    categories: dict[str, int] = {}
    nulls = 0
    for value in values:
        if _is_null(value):
            nulls += 1
        elif _is_number(value):
            numbers.append(float(value))
        elif isinstance(value, (str, bool)):
            key = _category(value)
            categories[key] = categories.get(key, 0) + 1
        else:  # nested samples (arrays, dicts) are not a feature's value
            continue
    profiles: list[Profile] = []
    if numbers or not categories:
        profiles.append(_numeric_profile(np.asarray(numbers, dtype=np.float64), dtype, nulls))
        nulls = 0
    if categories:
        profiles.append(_categorical_profile(categories.items(), dtype, nulls))
    return profiles


def merge(profiles: Iterable[Profile]) -> Profile | None:
    """One profile of the union of the data the profiles describe (all of one kind); ``None`` for none."""
    import datasketches

    merged: kll_doubles_sketch | frequent_strings_sketch | None = None
    first: Profile | None = None
    count = nulls = 0
    minimum: float | None = None
    maximum: float | None = None
    for profile in profiles:
        if first is None or merged is None:
            first = profile
            merged = profile.kll() if profile.kind == NUMERIC else profile.frequent()
        elif profile.kind == NUMERIC:
            merged.merge(datasketches.kll_doubles_sketch.deserialize(profile.sketch))
        else:
            merged.merge(datasketches.frequent_strings_sketch.deserialize(profile.sketch))
        count += profile.count
        nulls += profile.nulls
        if profile.minimum is not None:
            minimum = profile.minimum if minimum is None else min(minimum, profile.minimum)
        if profile.maximum is not None:
            maximum = profile.maximum if maximum is None else max(maximum, profile.maximum)
    if first is None or merged is None:
        return None
    return Profile(first.kind, first.dtype, count, nulls, minimum, maximum, merged.serialize())


def profile_table(data: object) -> dict[str, Profile]:
    """Profiles of every column of a table: a pandas or polars DataFrame, a 2-D numpy array (columns "0",
    "1", ...), a dict of columns, or a list of records."""
    import numpy as np

    if is_pandas_frame(data) or is_polars_frame(data):
        names = [str(name) for name in data.columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"a reference's columns need distinct names; repeated: {', '.join(repeated)}")
        return {str(name): profile_column(data[name]) for name in data.columns}
    if isinstance(data, Mapping):
        lengths = {str(name): _length(column) for name, column in data.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name}: {length}" for name, length in lengths.items())
            raise ValueError(f"a reference's columns must all have one length; got {shown}")
        return {str(name): profile_column(column) for name, column in data.items()}
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        names = list(data[0].keys())
        return {str(name): profile_column([_record(row).get(name) for row in data]) for name in names}
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"a reference must be a table (2-D); got an array of shape {array.shape}")
    return {str(j): profile_column(array[:, j]) for j in range(array.shape[1])}


def _length(column: object) -> int:
    if not isinstance(column, Sized):
        raise TypeError(f"a reference's column has no length: {type(column).__name__}")
    return len(column)


def _record(row: object) -> Mapping[object, object]:
    if not isinstance(row, Mapping):
        raise TypeError(f"a list of records holds a {type(row).__name__}")
    return row
