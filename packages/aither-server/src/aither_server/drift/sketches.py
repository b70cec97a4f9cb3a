"""Feeding drift from ingestion: the sampled rows and the predictions of each stored request, per hour.

Fed what stored requests queued, by the drift feeder (``drift/feeder.py``, or ``drift/process.py``). Each span's
``ml.features`` sample is read as rows (``sample`` of a table, or one dict of features), every value is added
to the profile of its column for the span's hour, and the predictions of the sampled rows (``_meta.rows``) to
the prediction profile; the new profiles are merged into the stored hours in one transaction (``drift/store.py``).
The whole schema each span declares (``_meta.columns`` / ``dtypes``, or a wide schema by ``_meta.schema``)
is recorded per hour, for new, missing and re-typed columns.

A failure here is logged and never fails the ingestion: the spans are already stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson

from aither.profile import output_value, profile_values
from aither_server.drift.embedding_store import NewRows
from aither_server.drift.embeddings import add_embeddings, collect
from aither_server.drift.store import DriftStore, HourProfiles, ModelKey, WideSchema
from aither_server.model.records import PredictionSpan

__all__ = ["HOUR_NS", "PREDICTION", "DriftSample", "drift_samples", "feed", "observe"]

logger = logging.getLogger("aither_server")

HOUR_NS = 3_600_000_000_000
#: The column name of a model's output in the ``prediction`` role.
PREDICTION = "prediction"


#: What drift reads of one stored prediction span: (model, start, ``ml.features`` as received, the parsed
#: ``ml.prediction``). A plain tuple: built for every span on the requests' thread, and pickled to the drift
#: process (``drift/process.py``); a NamedTuple's constructor cost that thread more than the rest of the hook.
DriftSample = tuple[ModelKey, int, str, object]


def drift_samples(spans: Sequence[PredictionSpan]) -> list[DriftSample]:
    """The spans drift can read: those with a feature sample, and not errored."""
    return [
        ((s.model, s.version, s.environment), s.start_ns, s.features, s.prediction)
        for s in spans
        if s.features is not None and s.error is None
    ]


def observe(store: DriftStore, samples: Sequence[DriftSample]) -> None:
    """Add the sampled rows of ``samples`` to their hours' profiles. Never raises."""
    try:
        feed(store, samples)
    except Exception:
        logger.warning("aither-server: drift sketches not updated for %d spans", len(samples), exc_info=True)


def _rows_of(features: object) -> tuple[list[dict[str, object]], list[int] | None, dict[str, object]]:
    """The sampled rows of an ``ml.features`` value, their indices in the batch, and its ``_meta``."""
    if not isinstance(features, dict):
        return [], None, {}
    meta = features.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    sample = features.get("sample")
    if isinstance(sample, list) and sample and all(isinstance(row, dict) for row in sample):
        rows = meta.get("rows")
        ok = isinstance(rows, list) and len(rows) == len(sample) and all(isinstance(i, int) for i in rows)
        return sample, rows if ok else None, meta
    if isinstance(sample, dict) and meta.get("type") == "dict":
        return [sample], [0], meta  # a dict of features is one row
    return [], None, meta


def _predictions_at(prediction: object, rows: list[int] | None) -> list[object]:
    """The output values of the sampled rows: row ``i`` of a batch output is ``prediction[i]``."""
    values = prediction
    if isinstance(values, dict) and isinstance(values.get("values"), list):
        values = values["values"]  # an output cut at max_prediction_rows
    if not isinstance(values, list):
        return [values] if rows in (None, [0]) and not isinstance(values, dict) else []
    picked = values if rows is None else [values[i] for i in rows if 0 <= i < len(values)]
    return [output_value(v) for v in picked]


def feed(store: DriftStore, samples: Sequence[DriftSample]) -> None:
    # Values are gathered per (model, hour) and column first, then profiled once per group: this loop runs for
    # every sampled value the server receives, so it does dictionary work only.
    groups: dict[tuple[ModelKey, int], dict[str, list[object]]] = {}
    outputs_by_hour: dict[tuple[ModelKey, int], list[object]] = {}
    columns: dict[tuple[ModelKey, int], dict[str, str]] = {}
    schemas: dict[str, WideSchema] = {}
    embeddings: NewRows = {}
    for model, start_ns, text, prediction in samples:
        try:
            features = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        sample, rows, meta = _rows_of(features)
        if not sample:
            continue
        bucket = (model, start_ns // HOUR_NS)
        if "embeddings" in meta:
            collect(embeddings, model, bucket[1], meta)
        declared = _declared(meta, store, schemas)
        if declared:
            known = columns.get(bucket)
            if known is None:
                columns[bucket] = dict(declared)
            elif known != declared:
                known.update(declared)
        by_column = groups.get(bucket)
        if by_column is None:
            by_column = groups[bucket] = {}
        _add_columns(by_column, sample)
        outputs = _predictions_at(prediction, rows)
        if outputs:
            outputs_by_hour.setdefault(bucket, []).extend(outputs)
    profiles: HourProfiles = {}
    for (model, hour), by_column in groups.items():
        declared = columns.get((model, hour), {})
        for column, found in by_column.items():
            _profile_into(profiles, (model, hour, "feature", column), found, declared.get(column, ""))
    for (model, hour), outputs in outputs_by_hour.items():
        _profile_into(profiles, (model, hour, "prediction", PREDICTION), outputs, "")
    if profiles or columns or schemas:
        store.add_hours(profiles, columns, schemas)
    if embeddings:
        add_embeddings(store.engine, embeddings)


def _profile_into(
    profiles: HourProfiles, key: tuple[ModelKey, int, str, str], values: list[object], dtype: str
) -> None:
    """One column's profile; a column that cannot be profiled costs itself, never the other columns, models
    and spans of the batch (they were all stored)."""
    try:
        profiles[key] = profile_values(values, dtype)
    except Exception:
        logger.warning("aither-server: drift skipped column %r of model %r this hour", key[3], key[0][0], exc_info=True)


def _add_columns(by_column: dict[str, list[object]], sample: list[dict[str, object]]) -> None:
    """Append each row's values to their columns' lists. The rows of a table's sample share their columns, in
    one order: then the values go a column at a time (``zip``), not a value at a time, which was most of the
    sketches' cost."""
    names = tuple(sample[0])
    if all(tuple(record) == names for record in sample[1:]):
        for column, values in zip(names, zip(*[record.values() for record in sample], strict=True), strict=True):
            found = by_column.get(column)
            if found is None:
                by_column[column] = list(values)
            else:
                found.extend(values)
        return
    for record in sample:
        for column, value in record.items():
            found = by_column.get(column)
            if found is None:
                by_column[column] = [value]
            else:
                found.append(value)


def _declared(meta: Mapping[str, object], store: DriftStore, schemas: dict[str, WideSchema]) -> dict[str, str]:
    """The whole input's columns and dtypes a span declares: inline, or a wide schema by its hash."""
    found = meta.get("dtypes")
    digest = meta.get("schema")
    if isinstance(found, dict):
        declared = {str(k): str(v) for k, v in found.items()}
        if isinstance(digest, str):
            schemas[digest] = {"columns": list(declared), "dtypes": declared}
        return declared
    if isinstance(digest, str):
        known = schemas.get(digest) or store.schema(digest)
        if known is not None:
            schemas.setdefault(digest, known)
            return {str(k): str(v) for k, v in known["dtypes"].items()}
    return {}
