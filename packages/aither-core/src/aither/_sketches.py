"""Profile-only mode: no input row leaves the process; per-model, per-column sketches of every row do.

A model wrapped with ``sample_rows=0`` (or every model, with ``aither.init(profile_only=True)``) sends its spans
without ``ml.features``. Instead the calling thread hands the worker its input (:func:`profile_capture`: a numpy
array is copied, at memory speed; a DataFrame or a polars frame is passed by reference, it is not copied), and
the worker adds every row to the model's column sketches (:class:`ProfileSketches`): a KLL quantiles sketch for
numbers, a frequent-items sketch for categories, and null counts, min and max: ``aither.profile``'s kinds, which
the server's drift keeps per hour. Column policies apply first (``drop``: never sketched; ``hash``: the hashed
values are the categories; ``round`` / ``bucket``: the rounded numbers), then strings are scrubbed; work is per
column (numpy on numbers, one count per distinct value on categories), never per row in Python.

The sketches go with the aggregates at each report (``aither.profile`` points on ``/v1/metrics``,
docs/wire-contract.md). They are cleared only once the server accepted the report that carried them; a report
that failed leaves them to the next, which covers the longer interval, exactly as the counts do.

numpy and datasketches are imported on the worker, when the first batch is profiled: ``import aither`` never
imports them.
"""

from __future__ import annotations

import atexit
import collections
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeGuard

from ._capture import Captured
from ._records import ModelIdentity
from ._types import is_numpy_array, is_pandas_frame, is_pandas_series, is_polars_frame, is_polars_series
from .profile import output_value

if TYPE_CHECKING:
    from typing import TypeAlias

    import pandas as pd
    import polars as pl
    from datasketches import frequent_strings_sketch, kll_doubles_sketch

    from ._privacy import Privacy
    from ._privacy._policy import Action, ColumnPolicies
    from ._types import Array, FloatArray
    from .profile import Profile

    #: One column of a batch as it is read: a numpy column, a pandas or polars Series, or a list of values.
    ColumnValues: TypeAlias = Array | pd.Series | pl.Series | list[object]
    #: A small batch's column as it waits to be sketched with others: numbers as numpy, anything else a list.
    Chunk: TypeAlias = Array | list[object]

__all__ = [
    "PROFILE_FORMAT",
    "Batch",
    "ProfilePoint",
    "ProfileSketches",
    "is_profile_capture",
    "profile_capture",
]

logger = logging.getLogger("aither")

#: The ``aither.profile.format`` of the points this module sends: DataSketches' own serialisations (KLL
#: doubles, frequent strings), format 1 of the wire contract.
PROFILE_FORMAT = "datasketches/1"
#: Strings are cut as sampled ones are (docs/wire-contract.md), so both modes profile the same categories.
_MAX_STRING = 1000
_FEATURE = "feature"
_PREDICTION = "prediction"
#: Where a model's outputs wait and are sketched beside its columns: no column name starts with NUL.
_PREDICTION_KEY = "\x00prediction"
#: Rows from which a batch is sketched on its own; smaller ones are sketched together (``ProfileSketches.add``).
SMALL_BATCH = 1024


class Batch(NamedTuple):
    """What the caller hands the worker: ``kind`` is ``numpy`` (a 2-D array, copied), ``frame`` (a pandas or
    polars DataFrame, by reference), ``records`` (a list of dicts) or ``row`` (one dict of features)."""

    kind: str
    data: object
    names: tuple[str, ...] | None


class ProfilePoint(NamedTuple):
    """One column's profile of one model over a report's interval, as sent."""

    model: ModelIdentity
    role: str
    column: str
    profile: Profile


def _render_profiled(data: object) -> object:
    """A profiled input has no sample: anything that renders it (an in-memory exporter) sees only this."""
    return {"_meta": {"profile_only": True}}


def is_profile_capture(captured: Captured) -> bool:
    return captured.render is _render_profiled


def profile_capture(inputs: object, names: tuple[str, ...] | None) -> Captured:
    """The calling thread's part: a handle on the input for the worker, and its rows. A numpy array is copied
    (a buffer reused for the next batch must not change what the worker reads); a frame is not (a pandas copy
    costs 50 µs even for one row): modify a frame in place after the call and its profile may see the change."""
    if is_numpy_array(inputs):
        if inputs.ndim == 2:
            copy = inputs.copy()
            return Captured(_render_profiled, Batch("numpy", copy, names), int(inputs.shape[0]), int(copy.nbytes))
        rows = int(inputs.shape[0]) if inputs.ndim else 1
        return Captured(_render_profiled, Batch("none", None, None), rows, 64)
    if is_pandas_frame(inputs) or is_polars_frame(inputs):
        shape = inputs.shape
        return Captured(_render_profiled, Batch("frame", inputs, None), int(shape[0]), 8 * shape[0] * shape[1])
    if isinstance(inputs, Mapping):
        return Captured(_render_profiled, Batch("row", dict(inputs), None), 1, 64 * len(inputs))
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], Mapping):
        return Captured(_render_profiled, Batch("records", list(inputs), None), len(inputs), 64 * len(inputs))
    rows = len(inputs) if isinstance(inputs, (list, tuple)) else 1
    return Captured(_render_profiled, Batch("none", None, None), rows, 64)


class _Column:
    """One column's live sketches: numbers in a KLL sketch, categories in a frequent-items one."""

    __slots__ = ("categories", "count_categories", "count_numbers", "dtype", "maximum", "minimum", "nulls", "numbers")

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.numbers: kll_doubles_sketch | None = None
        self.categories: frequent_strings_sketch | None = None
        self.count_numbers = 0
        self.count_categories = 0
        self.nulls = 0
        self.minimum: float | None = None
        self.maximum: float | None = None

    def add_numbers(self, values: FloatArray, nulls: int) -> None:
        """Finite float64 values (a numpy array) and the nulls left out of them."""
        import datasketches
        import numpy as np

        self.nulls += nulls
        if not len(values):
            return
        if self.numbers is None:
            from .profile import KLL_K

            self.numbers = datasketches.kll_doubles_sketch(KLL_K)
        self.numbers.update(np.require(values, np.float64, ["C", "W"]))
        self.count_numbers += len(values)
        low, high = float(values.min()), float(values.max())
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = high if self.maximum is None else max(self.maximum, high)

    def add_categories(self, counts: Sequence[tuple[str, int]], nulls: int) -> None:
        import datasketches

        self.nulls += nulls
        if not counts:
            return
        if self.categories is None:
            from .profile import FREQUENT_LG_MAX

            self.categories = datasketches.frequent_strings_sketch(FREQUENT_LG_MAX)
        for item, weight in counts:
            self.categories.update(item, weight)
            self.count_categories += weight

    def merge(self, other: _Column) -> None:
        if other.numbers is not None:
            if self.numbers is None:
                self.numbers = other.numbers
            else:
                self.numbers.merge(other.numbers)
        if other.categories is not None:
            if self.categories is None:
                self.categories = other.categories
            else:
                self.categories.merge(other.categories)
        self.count_numbers += other.count_numbers
        self.count_categories += other.count_categories
        self.nulls += other.nulls
        self.dtype = other.dtype or self.dtype
        for bound in (other.minimum, other.maximum):
            if bound is not None:
                self.minimum = bound if self.minimum is None else min(self.minimum, bound)
                self.maximum = bound if self.maximum is None else max(self.maximum, bound)

    def profiles(self) -> list[Profile]:
        """As ``aither.profile.profile_values`` makes them: the nulls go with the first kind (numbers first);
        a column of nulls only is a numeric profile of no value."""
        from .profile import CATEGORICAL, NUMERIC, Profile

        out: list[Profile] = []
        nulls = self.nulls
        if self.numbers is not None or self.categories is None:
            sketch = b"" if self.numbers is None else self.numbers.serialize()
            if not sketch:
                import datasketches

                from .profile import KLL_K

                sketch = datasketches.kll_doubles_sketch(KLL_K).serialize()
            out.append(Profile(NUMERIC, self.dtype, self.count_numbers, nulls, self.minimum, self.maximum, sketch))
            nulls = 0
        if self.categories is not None:
            sketch = self.categories.serialize()
            out.append(Profile(CATEGORICAL, self.dtype, self.count_categories, nulls, None, None, sketch))
        return out


class ProfileSketches:
    """Every profile-only model's column sketches. :meth:`add` runs on the worker; :meth:`collect` and
    :meth:`commit` on whichever thread sends the report (the worker, or one that flushes)."""

    def __init__(self, privacy: Privacy | None = None) -> None:
        self._privacy = privacy
        self._lock = threading.Lock()
        self._live: dict[ModelIdentity, dict[str, _Column]] = {}
        #: Taken by a report that was not accepted (yet): merged into the next one.
        self._unsent: dict[ModelIdentity, dict[str, _Column]] = {}
        self.start_ns = time.time_ns()
        #: A report carries the unsent sketches: until it is committed or released, no other report takes them.
        self._claimed = False
        self.rows = 0
        #: Batches of a type that cannot be profiled (1-D arrays, tensors, texts): counted, never raised.
        self.unprofiled = 0
        #: Set at interpreter exit: nothing more is sketched.
        self.closed = False
        _every.add(self)
        #: Small batches' columns waiting to be sketched together: {model: {column: (dtype, chunks)}}.
        self._waiting: dict[ModelIdentity, dict[str, tuple[str, list[Chunk]]]] = {}
        self._waiting_rows: dict[ModelIdentity, int] = {}
        #: Held to sketch: the worker adds while a flushing thread may collect.
        self._sketching = threading.Lock()

    # -- the worker --------------------------------------------------------------------------------------------

    def add(self, model: ModelIdentity, captured: Captured) -> None:
        """Add every row of one call's input to ``model``'s sketches (none once :attr:`closed`). Never raises.

        A batch of :data:`SMALL_BATCH` rows or more is sketched at once. Smaller ones (a 1-row frame costs
        pandas as much per column as a 1,000-row one) wait as plain column chunks until :data:`SMALL_BATCH`
        rows of the model wait, or a report collects them, and are then sketched together."""
        if self.closed:
            return
        batch: Batch = captured.data
        try:
            columns = list(_columns_of(batch))
        except Exception:
            logger.debug("aither: could not read a batch of %r for its profile", model.name, exc_info=True)
            columns = []
        if not columns:
            with self._lock:
                self.unprofiled += 1
            return
        with self._lock:
            self.rows += captured.rows
        with self._sketching:
            if not self.closed:
                self._add(model, captured, columns)

    def _add(self, model: ModelIdentity, captured: Captured, columns: list[tuple[str, ColumnValues, str]]) -> None:
        policies = self._privacy.policies_for(model.name) if self._privacy is not None else None
        if captured.rows >= SMALL_BATCH:
            self._sketch(model, policies, [(name, dtype, [values]) for name, values, dtype in columns])
            return
        waiting = self._waiting.setdefault(model, {})
        for name, values, dtype in columns:
            action = policies.action(name) if policies else None
            if action is not None and action.kind == "drop":
                continue
            try:
                chunk = _chunk(values)
            except Exception:
                logger.debug("aither: column %r of %r not profiled", name, model.name, exc_info=True)
                continue
            found = waiting.get(name)
            if found is None:
                waiting[name] = (dtype, [chunk])
            else:
                found[1].append(chunk)
                waiting[name] = (dtype, found[1])
        rows = self._waiting_rows[model] = self._waiting_rows.get(model, 0) + captured.rows
        if rows >= SMALL_BATCH:
            self._fold(model)

    def add_prediction(self, model: ModelIdentity, rendered: object) -> None:
        """Add a profile-only call's output (``ml.prediction`` as rendered) to the model's prediction sketch:
        one value per row, read as the server reads a sampled row's (a row of class scores by its arg-max class,
        a ``{"label", "score"}`` by its label). Never raises."""
        if self.closed:
            return
        try:
            values = _prediction_values(rendered)
            chunk = _chunk(values) if values else None
        except Exception:
            logger.debug("aither: the output of %r not profiled", model.name, exc_info=True)
            return
        if chunk is None:
            return
        with self._sketching:
            if self.closed:
                return
            waiting = self._waiting.setdefault(model, {})
            found = waiting.get(_PREDICTION_KEY)
            if found is None:
                waiting[_PREDICTION_KEY] = ("", [chunk])
            else:
                found[1].append(chunk)

    def _fold(self, model: ModelIdentity) -> None:
        """Sketch the small batches of ``model`` that wait, together."""
        waiting = self._waiting.pop(model, {})
        self._waiting_rows.pop(model, None)
        if waiting:
            policies = self._privacy.policies_for(model.name) if self._privacy is not None else None
            self._sketch(model, policies, [(name, dtype, chunks) for name, (dtype, chunks) in waiting.items()])

    def _sketch(
        self,
        model: ModelIdentity,
        policies: ColumnPolicies | None,
        columns: list[tuple[str, str, Sequence[ColumnValues]]],
    ) -> None:
        privacy = self._privacy
        scrub = privacy is not None and privacy.scrub_values
        redactions: dict[tuple[str, str], int] = {}
        updates: list[tuple[str, _Column]] = []
        for name, dtype, chunks in columns:
            output = name == _PREDICTION_KEY  # outputs are sent as they are in sampling mode: no policy, no scrub
            action = policies.action(name) if policies and not output else None
            if action is not None and action.kind == "drop":
                continue
            column = _Column(dtype)
            try:
                for values in _joined(chunks):
                    _add_values(column, values, action, policies, scrub and not output, privacy, name, redactions)
            except Exception:
                logger.debug("aither: column %r of %r not profiled", name, model.name, exc_info=True)
                continue
            updates.append((name, column))
        if privacy is not None:
            for (name, kind), n in redactions.items():
                privacy.redactions.add(model.name, name, {kind: n})
        with self._lock:
            live = self._live.setdefault(model, {})
            for name, column in updates:
                found = live.get(name)
                if found is None:
                    live[name] = column
                else:
                    found.merge(column)

    # -- the report --------------------------------------------------------------------------------------------

    def collect(self) -> list[ProfilePoint]:
        """The profiles not yet delivered (those of a failed report included), per model and column; none while
        another report carries them. ``commit`` or ``release`` after a non-empty answer."""
        with self._sketching:
            for model in list(self._waiting):
                self._fold(model)
        with self._lock:
            if self._claimed:
                return []
            live, self._live = self._live, {}
            for model, columns in live.items():
                unsent = self._unsent.setdefault(model, {})
                for name, column in columns.items():
                    found = unsent.get(name)
                    if found is None:
                        unsent[name] = column
                    else:
                        found.merge(column)
            taken = [
                (model, name, column) for model, columns in self._unsent.items() for name, column in columns.items()
            ]
            self._claimed = bool(taken)
        return [
            ProfilePoint(model, _PREDICTION, _PREDICTION, profile)
            if name == _PREDICTION_KEY
            else ProfilePoint(model, _FEATURE, name, profile)
            for model, name, column in taken
            for profile in column.profiles()
        ]

    def commit(self, end_ns: int) -> None:
        """The report covering ``(start_ns, end_ns]`` was accepted: its profiles are delivered."""
        with self._lock:
            self._unsent = {}
            self.start_ns = end_ns

    def release(self) -> None:
        """The report that carried the sketches is done (delivered or not): the next one may take them."""
        with self._lock:
            self._claimed = False


def _pandas_columns(frame: pd.DataFrame) -> list[tuple[str, ColumnValues, str]] | None:
    """A pandas frame's columns read from its blocks: a numpy row of a 2-D block, or an extension array, per
    column. ``frame[name]`` builds a Series per column, which cost more than all the rest for a small frame.
    ``None`` where the blocks are not as expected (another pandas): the caller then reads column by column."""
    try:
        names = [str(name) for name in frame.columns]
        found: list[ColumnValues | None] = [None] * len(names)
        dtypes: list[str] = [""] * len(names)
        rows = len(frame)
        for block in frame._mgr.blocks:
            values = block.values
            dtype = values.dtype
            if dtype.kind in "mM":
                return None  # datetimes are read as a Series reads them
            text = str(dtype)
            locations = block.mgr_locs.as_array
            if getattr(values, "ndim", 1) == 2:
                if values.shape[1] != rows:
                    return None
                for k, location in enumerate(locations):
                    found[location] = values[k]
                    dtypes[location] = text
            else:
                (location,) = locations
                if len(values) != rows:
                    return None
                found[location] = values
                dtypes[location] = text
        columns = [values for values in found if values is not None]
        if len(columns) != len(names):
            return None
        return list(zip(names, columns, dtypes, strict=True))
    except Exception:
        return None


_every: weakref.WeakSet[ProfileSketches] = weakref.WeakSet()


@atexit.register
def _forget_all() -> None:
    """At exit, after the client's last report: sketches still held (a backend that was down, a worker still
    busy) are let go, once no sketch is being made (up to a second), and nothing more is sketched, so the
    interpreter's teardown finds no DataSketches object alive (nanobind prints a warning for each it finds)."""
    for sketches in list(_every):
        sketches.closed = True
        acquired = sketches._sketching.acquire(timeout=1.0)
        try:
            with sketches._lock:
                sketches._live, sketches._unsent = {}, {}
            sketches._waiting, sketches._waiting_rows = {}, {}
        finally:
            if acquired:
                sketches._sketching.release()


def _prediction_values(prediction: object) -> list[object]:
    """One value per row of a rendered output, as the server's drift reads the output of a sampled row."""
    values = prediction
    if isinstance(values, dict) and isinstance(values.get("values"), list):
        values = values["values"]  # cut at max_prediction_rows, or tagged with how it is read
    if not isinstance(values, list):
        return [] if isinstance(values, dict) else [values]
    return [output_value(value) for value in values]


def _chunk(values: ColumnValues) -> Chunk:
    """A small batch's column as it waits: a numpy array of numbers (integers kept integers, so a hashed column
    hashes them as sampling does), or a list of values; no pandas or polars object is kept."""
    import numpy as np

    if is_pandas_series(values):
        import pandas as pd

        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            if values.isna().any():
                floats: Array = values.to_numpy(dtype=np.float64, na_value=np.nan)
                return floats
            return np.asarray(values.to_numpy())
        items: list[object] = values.tolist()
        return items
    if is_polars_series(values):
        if values.dtype.is_numeric():
            return values.to_numpy() if values.null_count() == 0 else _numeric_array(values) or []
        return values.to_list()
    if isinstance(values, np.ndarray):
        return values if values.dtype.kind in "iuf" else values.tolist()
    numeric = _numeric_array(values)
    return list(values) if numeric is None else numeric


def _joined(chunks: Sequence[ColumnValues]) -> Sequence[ColumnValues]:
    """A column's waiting chunks as at most two value sets: the numeric arrays joined, the lists joined."""
    import numpy as np

    if len(chunks) == 1:
        return chunks
    arrays = [c for c in chunks if isinstance(c, np.ndarray)]
    lists = [c for c in chunks if not isinstance(c, np.ndarray)]
    out: list[ColumnValues] = []
    if arrays:
        out.append(np.concatenate(arrays) if len(arrays) > 1 else arrays[0])
    if lists:
        out.append([v for c in lists for v in c])
    return out


def _columns_of(batch: Batch) -> Iterator[tuple[str, ColumnValues, str]]:
    """(name, values, dtype) of each column of a batch: values a numpy array, a pandas/polars Series, or a list."""
    kind, data, names = batch
    if kind == "numpy" and is_numpy_array(data):
        dtype = str(data.dtype)
        for j in range(data.shape[1]):
            name = names[j] if names is not None and j < len(names) else str(j)
            yield name, data[:, j], dtype
    elif kind == "frame" and (is_pandas_frame(data) or is_polars_frame(data)):
        found = _pandas_columns(data) if is_pandas_frame(data) else None
        if found is not None:
            yield from found
        else:
            for name in data.columns:
                series = data[name]
                yield str(name), series, str(series.dtype)
    elif kind == "row" and isinstance(data, Mapping):
        for name, value in data.items():
            yield str(name), [value], type(value).__name__
    elif kind == "records" and isinstance(data, list):
        first = data[0]
        for name in first:
            yield (
                str(name),
                [row.get(name) if isinstance(row, Mapping) else None for row in data],
                type(first[name]).__name__,
            )


def _add_values(
    column: _Column,
    values: ColumnValues,
    action: Action | None,
    policies: ColumnPolicies | None,
    scrub: bool,
    privacy: Privacy | None,
    name: str,
    redactions: dict[tuple[str, str], int],
) -> None:
    """One column's values, after its policy (and scrubbing, for strings), into ``column``'s sketches."""
    import numpy as np

    # A hashed column is categories of the hashed values, hashed as sampling hashes them (ints as ints).
    numeric = None if action is not None and action.kind == "hash" else _numeric_array(values)
    if numeric is not None:
        floats = numeric.astype(np.float64, copy=False).ravel()
        finite = np.isfinite(floats)
        kept = floats if finite.all() else floats[finite]
        nulls = int(floats.size - kept.size)
        if action is not None and action.kind == "round":
            kept = np.round(kept, int(action.amount))
        elif action is not None and action.kind == "bucket":
            kept = np.floor(kept / action.amount) * action.amount
        column.add_numbers(kept, nulls)
        return
    counts, nulls = _value_counts(values)
    numbers: list[float] = []
    weights: list[int] = []
    categories: collections.Counter[str] = collections.Counter()
    for value, n in counts:
        value = _plain(value)
        if _is_null(value):
            nulls += n
        elif action is not None and action.kind == "hash":
            assert policies is not None
            categories[policies.hashed(value)] += n
        elif _is_number(value):
            if action is not None and action.kind in ("round", "bucket"):
                assert policies is not None
                value = policies.number(action, value)
            numbers.append(float(value))
            weights.append(n)
        elif isinstance(value, str):
            text = value[:_MAX_STRING]
            if scrub and action is None and privacy is not None:
                found: dict[tuple[str, str], int] = {}
                text = privacy.scrubbed_text(text, name, found)
                for key, times in found.items():
                    redactions[key] = redactions.get(key, 0) + times * n
            categories[text] += n
        else:  # booleans as sampled ones are read ("True"), anything else by its text
            categories[str(value)[:_MAX_STRING]] += n
    if numbers:
        column.add_numbers(np.repeat(np.asarray(numbers, dtype=np.float64), weights), 0)
    column.add_categories(list(categories.items()), nulls)


def _numeric_array(values: ColumnValues) -> Array | None:
    """``values`` as a numeric numpy array when the column is numbers (not booleans), else None."""
    import numpy as np

    if is_pandas_series(values):
        import pandas as pd

        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            floats: Array = values.to_numpy(dtype=np.float64, na_value=np.nan)
            return floats
        return None
    if is_polars_series(values):
        if values.dtype.is_numeric():
            numbers: Array = values.cast(float).fill_null(float("nan")).to_numpy()
            return numbers
        return None
    if isinstance(values, np.ndarray):
        return values if values.dtype.kind in "iuf" else None
    if values and all(type(v) in (int, float) for v in values):
        return np.asarray(values, dtype=np.float64)
    return None


def _value_counts(values: ColumnValues) -> tuple[list[tuple[object, int]], int]:
    """(distinct value, count) pairs of a non-numeric column, at C speed, and the nulls among them."""
    if is_pandas_series(values):
        nulls = int(values.isna().sum())
        counted = values.value_counts(dropna=True)
        return list(zip(counted.index.tolist(), counted.tolist(), strict=True)), nulls
    if is_polars_series(values):
        nulls = int(values.null_count())
        counted = values.drop_nulls().value_counts()
        return list(zip(counted[:, 0].to_list(), counted[:, 1].to_list(), strict=True)), nulls
    items: list[object] = values.tolist() if is_numpy_array(values) else list(values)
    try:
        return list(collections.Counter(items).items()), 0
    except TypeError:  # unhashable values (lists): each one its own category
        return [(item, 1) for item in items], 0


def _plain(value: object) -> object:
    """A numpy scalar as the Python value sampling renders (and hashes)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    return type(value).__name__ in ("NAType", "NaTType")
