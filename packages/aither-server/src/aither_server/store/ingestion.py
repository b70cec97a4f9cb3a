"""Ingestion's SQL: prediction and label spans, and ``/v1/metrics`` aggregate points, into their tables and
rollups. Runs inside the store's write transaction (``Store.ingest`` groups requests into one), which holds the
engine's write lock: a span retried to another process finds the first one stored, and a label and its
prediction arriving at two processes join exactly once, whichever commits second.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from aither_server.model.records import (
    AggregatePoint,
    InvalidJson,
    LabelSpan,
    PredictionSpan,
    RowValue,
    label_keys,
    label_rows,
    parse_prediction,
    prediction_rows,
)
from aither_server.model.rollup_keys import HOUR_NS, MINUTE_NS, aggregate_bucket, latency_bucket
from aither_server.store.engine import Connection, Database
from aither_server.store.rollups import (
    AGGREGATE_LATENCY,
    AGGREGATE_MINUTES,
    INSTANCE_LATENCY,
    INSTANCE_MINUTES,
    INSTANCE_MODELS,
    LATENCY,
    VOLUME,
    QualityDeltas,
    add_quality,
    count_call,
    write_quality,
)

__all__ = ["Ingestor", "trace_key"]

# Parameters per statement stay well under SQLite's limit (32766 since 3.32, 999 before).
_CHUNK = 500

_INSERT_PREDICTION = (
    "INSERT INTO predictions (id, trace_key, trace_id, span_id, model_id, name, method, framework, start_ns,"
    " latency_ns, status, n_rows, batch_size, features, prediction, service_name, received_ns,"
    " error, instance_id, sample_rate, link_trace_id, link_span_id, entity)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A prediction's row is written to prediction_rows only once it is labelled: with its label, when the label
# arrives (``_apply_labels``), or with the prediction when the label came first. Every query of that table
# reads labelled rows only, and most rows are never labelled: writing them all was a third of a span's storing.
_INSERT_ROW = (
    "INSERT INTO prediction_rows (pred_id, row, model_id, start_ns, kind, pred_key, pred_num, score, proba,"
    " weight, label_key, label_num, label_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The common spans leave their optional columns NULL: this statement names only the others. Python's sqlite3
# binds a None (or bytes) parameter through its adapter lookup, about 0.7 us each.
_INSERT_PLAIN_PREDICTION = (
    "INSERT INTO predictions (id, trace_key, trace_id, span_id, model_id, name, method, framework, start_ns,"
    " latency_ns, status, n_rows, batch_size, features, prediction, service_name, received_ns)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Only a label at least as recent as the stored one replaces it, so out-of-order retries do not roll back.
# A label knows its prediction's rows (and model) once that is stored, so labels that cannot join are found
# through the labels_unjoined partial index (GET /api/v1/labels/unjoined). Set at insertion when the
# prediction is there already (the common case), so the label never enters that index.
_UPSERT_LABEL = (
    "INSERT INTO labels (trace_id, row, label, label_key, label_num, label_kind, time_ns, received_ns, pred_rows,"
    " model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (trace_id, row) DO UPDATE SET label = excluded.label, label_key = excluded.label_key,"
    " label_num = excluded.label_num, label_kind = excluded.label_kind, time_ns = excluded.time_ns,"
    " received_ns = excluded.received_ns"
    " WHERE excluded.time_ns >= labels.time_ns"
)
_LABELS_JOINED = "UPDATE labels SET pred_rows = ?, model_id = ? WHERE trace_id = ? AND pred_rows IS NULL"
_INSERT_POINT = (
    "INSERT INTO aggregate_points (instance_id, metric, model_id, reason, start_ns, end_ns, value, buckets,"
    " received_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (instance_id, metric, model_id, reason, start_ns, end_ns) DO NOTHING"
)
#: The models table's running totals of each aggregate metric (the models list reads them).
_MODEL_TOTALS = {"calls": "aggregate_calls", "rows": "aggregate_rows", "errors": "aggregate_errors"}
_NO_LINK = (None, None)
#: A stored prediction's (model id, start, weight, row values), to write a row at its first label.
_StoredPrediction = tuple[int, int, "float | None", Sequence[RowValue]]

#: SQLite: the (prediction, row) pairs a request of labels touches, joined in one statement (``_affected``).
#: Temporary: private to the writer's connection, in memory (temp_store), never in the database file.
_AFFECTED_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS affected_rows (pred_id INTEGER NOT NULL, row INTEGER NOT NULL,"
    " trace_id BLOB NOT NULL, PRIMARY KEY (pred_id, row)) WITHOUT ROWID"
)


def trace_key(trace_id: bytes) -> int:
    """The indexed part of a trace id: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(trace_id[:8], "big", signed=True)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _weight(sample_rate: float | None) -> float | None:
    """A span's weight in the quality sums: it stands for ``1 / sample_rate`` calls (``None``: one call)."""
    return None if sample_rate is None else 1.0 / sample_rate


def _labelled_row(
    rows: list[tuple[Any, ...]],
    quality: QualityDeltas,
    pred_id: int,
    model_id: int,
    start_ns: int,
    weight: float | None,
    value: RowValue,
    label: tuple[Any, Any, Any],
) -> None:
    """Add a prediction row's first label: its ``prediction_rows`` row, and its count in ``quality_hours``."""
    rows.append(
        (pred_id, value.row, model_id, start_ns, value.kind, value.key, value.num, value.score, value.proba, weight,
         *label)
    )  # fmt: skip
    if label[2] is not None:
        add_quality(quality, 1, model_id, start_ns, (value.kind, value.key, value.num, value.score), label, weight)


class Ingestor:
    """Writes spans and aggregate points; keeps the ids of the models and instances it has seen."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.model_ids: dict[tuple[str, str, str], int] = {}
        self.instance_ids: dict[str, int] = {}

    def _where_in(self, column: str, values: Sequence[Any], pg_type: str) -> Iterator[tuple[str, Sequence[Any]]]:
        """``column`` among ``values`` as (condition, parameters), in as many statements as the engine needs:
        PostgreSQL takes one array (one statement, prepared once), SQLite lists of at most :data:`_CHUNK`."""
        if self._db.dialect == "postgresql":
            yield f"{column} = ANY(?::{pg_type}[])", (list(values),)
            return
        for chunk in _chunks(values):
            yield f"{column} IN ({','.join('?' * len(chunk))})", chunk

    def _existing(self, conn: Connection, table: str, keys: Sequence[tuple[bytes, bytes]]) -> set[tuple[bytes, bytes]]:
        found: set[tuple[bytes, bytes]] = set()
        if table == "predictions":
            where = self._where_in("trace_key", list({trace_key(k[0]) for k in keys}), "bigint")
        else:
            where = self._where_in("trace_id", list({k[0] for k in keys}), "bytea")
        for condition, params in where:
            found.update(conn.execute(f"SELECT trace_id, span_id FROM {table} WHERE {condition}", params).fetchall())
        return found

    def _model_id(
        self,
        conn: Connection,
        key: tuple[str, str, str],
        seen_ns: int,
        new: dict[tuple[str, str, str], int],
    ) -> int:
        cached = self.model_ids.get(key) or new.get(key)
        if cached is not None:
            return cached
        conn.execute(
            "INSERT INTO models (name, version, environment, first_seen_ns, last_seen_ns)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name, version, environment) DO NOTHING",
            (*key, seen_ns, seen_ns),
        )
        model_id: int = conn.execute(
            "SELECT id FROM models WHERE name = ? AND version = ? AND environment = ?", key
        ).fetchone()[0]
        new[key] = model_id
        return model_id

    def _instance_id(self, conn: Connection, instance: str, seen_ns: int, new: dict[str, int]) -> int:
        cached = self.instance_ids.get(instance) or new.get(instance)
        if cached is not None:
            return cached
        conn.execute(
            "INSERT INTO instances (instance, first_seen_ns) VALUES (?, ?) ON CONFLICT (instance) DO NOTHING",
            (instance, seen_ns),
        )
        instance_id: int = conn.execute("SELECT id FROM instances WHERE instance = ?", (instance,)).fetchone()[0]
        new[instance] = instance_id
        return instance_id

    def predictions(
        self,
        conn: Connection,
        spans: Sequence[PredictionSpan],
        now: int,
        new_models: dict[tuple[str, str, str], int],
        new_instances: dict[str, int],
    ) -> tuple[int, int]:
        if not spans:
            return 0, 0
        unique = {(s.trace_id, s.span_id): s for s in spans}
        existing = self._existing(conn, "predictions", list(unique))
        fresh = [s for k, s in unique.items() if k not in existing] if existing else list(unique.values())
        if not fresh:
            return 0, 0
        # Labels that arrived before their prediction: its rows they label are written now, with the label.
        early: dict[tuple[bytes, int], tuple[Any, Any, Any]] = {}
        trace_ids = list({s.trace_id for s in fresh})
        for condition, params in self._where_in("trace_id", trace_ids, "bytea"):
            for trace_id, row, key, num, kind in conn.execute(
                f"SELECT trace_id, row, label_key, label_num, label_kind FROM labels WHERE {condition}", params
            ):
                early[(trace_id, row)] = (key, num, kind)
        early_traces = {trace_id for trace_id, _ in early}
        joined: list[tuple[int, int, bytes]] = []

        next_id: int = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM predictions").fetchone()[0]
        pred_params: list[tuple[Any, ...]] = []
        plain_params: list[tuple[Any, ...]] = []
        row_params: list[tuple[Any, ...]] = []
        per_model: dict[int, list[int]] = {}
        volume: dict[tuple[int, int], list[int]] = {}
        latency: dict[tuple[int, int, int], int] = {}
        # Per instance (0: none given): span counts, and latencies in the aggregate histogram's buckets.
        instance_totals: dict[Any, list[int]] = {}
        instance_minutes: dict[Any, list[int]] = {}
        instance_latency: dict[tuple[int, int, int, int], int] = {}
        sampled: set[int] = set()
        quality: QualityDeltas = {}
        total_rows = 0
        model_ids = self.model_ids
        from_bytes = int.from_bytes
        for span in fresh:
            model_key = (span.model, span.version, span.environment)
            model_id = model_ids.get(model_key) or self._model_id(conn, model_key, span.start_ns, new_models)
            instance = span.instance
            instance_id = (
                (self.instance_ids.get(instance) or self._instance_id(conn, instance, now, new_instances))
                if instance
                else None
            )
            sample_rate = span.sample_rate
            weight = _weight(sample_rate)
            if weight is not None:
                sampled.add(model_id)
            n_rows, values = prediction_rows(span)
            total_rows += n_rows
            pred_id = next_id
            next_id += 1
            trace_id = span.trace_id
            start_ns = span.start_ns
            latency_ns = span.end_ns - start_ns
            error = span.error
            status = 0 if error is None else 1
            link = span.link
            params = (
                pred_id,
                from_bytes(trace_id[:8], "big", signed=True),  # trace_key()
                trace_id,
                span.span_id,
                model_id,
                span.name,
                span.method,
                span.framework,
                start_ns,
                latency_ns,
                status,
                n_rows,
                span.batch_size,
                span.features,
                span.prediction_json,
                span.service_name,
                now,
            )
            entity = span.entity
            if error is None and instance_id is None and sample_rate is None and link is None and entity is None:
                plain_params.append(params)
            else:
                pred_params.append((*params, error, instance_id, sample_rate, *(link or _NO_LINK), entity))
            if early and trace_id in early_traces:
                joined.append((n_rows, model_id, trace_id))
                for v in values:
                    label = early.get((trace_id, v.row))
                    if label is not None:
                        _labelled_row(row_params, quality, pred_id, model_id, start_ns, weight, v, label)
            minute = (model_id, start_ns // MINUTE_NS)
            cell = volume.get(minute)
            if cell is None:
                volume[minute] = [1, status, n_rows]
            else:
                cell[0] += 1
                cell[1] += status
                cell[2] += n_rows
            bucket = (model_id, start_ns // HOUR_NS, latency_bucket(latency_ns))
            latency[bucket] = latency.get(bucket, 0) + 1
            shared = (model_id, start_ns // HOUR_NS, instance_id or 0, aggregate_bucket(latency_ns))
            instance_latency[shared] = instance_latency.get(shared, 0) + 1
            if instance_id is not None:
                count_call(instance_totals, (model_id, instance_id), status, n_rows)
                count_call(instance_minutes, (model_id, start_ns // MINUTE_NS, instance_id), status, n_rows)
            stats = per_model.get(model_id)
            if stats is None:
                per_model[model_id] = [1, n_rows, start_ns, start_ns]
            else:
                stats[0] += 1
                stats[1] += n_rows
                if start_ns < stats[2]:
                    stats[2] = start_ns
                elif start_ns > stats[3]:
                    stats[3] = start_ns
        for statement, batch in (
            (_INSERT_PLAIN_PREDICTION, plain_params),
            (_INSERT_PREDICTION, pred_params),
            (_INSERT_ROW, row_params),
        ):
            if batch:
                conn.executemany(statement, batch)
        if joined:
            conn.executemany(_LABELS_JOINED, joined)
        conn.executemany(
            "UPDATE models SET calls = calls + ?, predictions = predictions + ?,"
            f" first_seen_ns = {self._db.least()}(first_seen_ns, ?),"
            f" last_seen_ns = {self._db.greatest()}(last_seen_ns, ?) WHERE id = ?",
            [(c, r, lo, hi, mid) for mid, (c, r, lo, hi) in sorted(per_model.items())],
        )
        conn.executemany(VOLUME, [(*k, *v) for k, v in volume.items()])
        conn.executemany(LATENCY, [(*k, v) for k, v in latency.items()])
        conn.executemany(INSTANCE_LATENCY, [(*k, v) for k, v in instance_latency.items()])
        if instance_totals:
            conn.executemany(INSTANCE_MODELS, [(*k, *v) for k, v in instance_totals.items()])
            conn.executemany(INSTANCE_MINUTES, [(*k, *v) for k, v in instance_minutes.items()])
        if sampled:
            conn.executemany("UPDATE models SET sampled = 1 WHERE id = ?", [(mid,) for mid in sampled])
        write_quality(conn, quality)
        return len(fresh), total_rows

    def labels(self, conn: Connection, spans: Sequence[LabelSpan], now: int) -> tuple[int, int]:
        if not spans:
            return 0, 0
        unique = {(s.trace_id, s.span_id): s for s in spans}
        existing = self._existing(conn, "label_spans", list(unique))
        fresh = sorted((s for k, s in unique.items() if k not in existing), key=lambda s: s.time_ns)
        if not fresh:
            return 0, 0
        owner, joined = self._owners(conn, {s.trace_id for s in fresh})
        span_params = []
        upserts = []
        affected: dict[bytes, set[int]] = {}
        no_prediction = (None, None)
        for span in fresh:
            trace_id, label, time_ns = span.trace_id, span.label, span.time_ns
            prediction = joined.get(trace_id, no_prediction)
            # The JSON text as received when there is one (it parses to ``label``): no re-encoding.
            text = span.label_json if span.label_json is not None else _dumps(label)
            span_params.append((trace_id, span.span_id, span.row, text, time_ns, now))
            rows = affected.get(trace_id)
            if rows is None:
                rows = affected[trace_id] = set()
            keys = span.keys if span.keys is not None else label_keys(label, span.row)
            if span.row is not None or not isinstance(label, list):
                # One row: the whole label is its value (label_rows' first and last rules).
                row = 0 if span.row is None else span.row
                vk = keys[0]
                upserts.append((trace_id, row, text, vk.key, vk.num, vk.kind, time_ns, now, *prediction))
                rows.add(row)
                continue
            for (row, value), vk in zip(label_rows(span), keys, strict=True):
                upserts.append((trace_id, row, _dumps(value), vk.key, vk.num, vk.kind, time_ns, now, *prediction))
                rows.add(row)
        conn.executemany(
            "INSERT INTO label_spans (trace_id, span_id, row, label, time_ns, received_ns) VALUES (?, ?, ?, ?, ?, ?)",
            span_params,
        )
        conn.executemany(_UPSERT_LABEL, upserts)
        if owner:
            # Rows of these traces labelled before this request learnt their prediction when it was stored.
            self._apply_labels(conn, affected, owner)
        return len(fresh), len(upserts)

    def _owners(
        self, conn: Connection, trace_ids: set[bytes]
    ) -> tuple[dict[int, tuple[bytes, int]], dict[bytes, tuple[int, int]]]:
        """The stored predictions of these traces: {prediction id: (trace id, row count)}, and per trace the
        (row count, model id) of its first prediction."""
        owner: dict[int, tuple[bytes, int]] = {}
        joined: dict[bytes, tuple[int, int]] = {}
        for condition, params in self._where_in("trace_key", list({trace_key(t) for t in trace_ids}), "bigint"):
            for pred_id, trace_id, n_rows, model_id in conn.execute(
                f"SELECT id, trace_id, n_rows, model_id FROM predictions WHERE {condition} ORDER BY start_ns, id",
                params,
            ):
                if trace_id in trace_ids:
                    owner[pred_id] = (trace_id, n_rows)
                    joined.setdefault(trace_id, (n_rows, model_id))
        return owner, joined

    def _affected(self, conn: Connection, pairs: list[tuple[int, int, bytes]]) -> list[Any]:
        """For each (prediction id, row, trace id): the current label, and the prediction row's values and old
        label (NULLs when the row is not written yet: never labelled before), one primary-key probe per pair in
        each table (work in proportion to the request)."""
        columns = (
            "SELECT a.pred_id, a.row, l.label_key, l.label_num, l.label_kind, pr.model_id, pr.start_ns, pr.kind,"
            " pr.pred_key, pr.pred_num, pr.score, pr.weight, pr.label_key, pr.label_num, pr.label_kind"
        )
        if self._db.dialect == "postgresql":
            # The pairs as three arrays, unnested: one statement, no temporary table to create and empty.
            unique = sorted(set(pairs))
            return conn.execute(
                f"{columns} FROM unnest(?::bigint[], ?::bigint[], ?::bytea[]) AS a (pred_id, row, trace_id)"
                " JOIN labels l ON l.trace_id = a.trace_id AND l.row = a.row"
                " LEFT JOIN prediction_rows pr ON pr.pred_id = a.pred_id AND pr.row = a.row",
                ([p[0] for p in unique], [p[1] for p in unique], [p[2] for p in unique]),
            ).fetchall()
        conn.execute(_AFFECTED_TABLE)
        conn.execute("DELETE FROM temp.affected_rows")
        conn.executemany("INSERT OR IGNORE INTO temp.affected_rows (pred_id, row, trace_id) VALUES (?, ?, ?)", pairs)
        # CROSS JOIN keeps the temporary table outermost: one primary-key probe per pair in each table.
        found = conn.execute(
            f"{columns} FROM temp.affected_rows a"
            " CROSS JOIN labels l ON l.trace_id = a.trace_id AND l.row = a.row"
            " LEFT JOIN prediction_rows pr ON pr.pred_id = a.pred_id AND pr.row = a.row"
        ).fetchall()
        conn.execute("DELETE FROM temp.affected_rows")
        return found

    def _unwritten_rows(self, conn: Connection, pred_ids: set[int]) -> dict[int, _StoredPrediction]:
        """The row values of these stored predictions, reduced again from their stored ``ml.prediction`` (as the
        decoder reduced it): {prediction id: (model id, start, weight, row values)}."""
        found: dict[int, _StoredPrediction] = {}
        for condition, params in self._where_in("id", sorted(pred_ids), "bigint"):
            for pred_id, model_id, start_ns, text, batch_size, method, sample_rate in conn.execute(
                "SELECT id, model_id, start_ns, prediction, batch_size, method, sample_rate FROM predictions"
                f" WHERE {condition} AND status = 0 AND prediction IS NOT NULL",
                params,
            ):
                try:
                    _, (_, values) = parse_prediction(text, batch_size, method)
                except InvalidJson:  # stored by a version that did not refuse poison values: nothing to join
                    continue
                found[pred_id] = (model_id, start_ns, _weight(sample_rate), values)
        return found

    def _apply_labels(
        self, conn: Connection, affected: dict[bytes, set[int]], owner: dict[int, tuple[bytes, int]]
    ) -> None:
        """Copy the current label of each affected (trace id, row) onto the prediction rows it joins (``owner``:
        the stored predictions of those traces), and move the row's contribution in ``quality_hours`` from its
        old label to its new one.

        The (prediction, row) pairs are joined once to the prediction rows and the labels through their primary
        keys (``_affected``): work in proportion to the request. (Lists of traces crossed with lists of rows
        grow with the square of a request of labels each for its own trace and row.)
        """
        # A row past its prediction's rows has nothing to join (a label that waits for its row, or a hostile
        # request of rows no prediction has): it is not looked up.
        pairs = [
            (pred_id, row, trace_id)
            for pred_id, (trace_id, n_rows) in owner.items()
            for row in affected[trace_id]
            if row < n_rows
        ]
        if not pairs:
            return
        updates: list[tuple[Any, ...]] = []
        inserts: list[tuple[Any, ...]] = []
        quality: QualityDeltas = {}
        unwritten: list[tuple[int, int, tuple[Any, Any, Any]]] = []
        for found in self._affected(conn, pairs):
            pred_id, row = found[0], found[1]
            label = (found[2], found[3], found[4])
            model_id = found[5]
            if model_id is None:  # the row's first label: the row is written below
                unwritten.append((pred_id, row, label))
                continue
            start_ns, kind, pred_key, pred_num, score, weight = found[6:12]
            old = (found[12], found[13], found[14])
            if old == label:
                continue
            pred = (kind, pred_key, pred_num, score)
            if old[2] is not None:
                add_quality(quality, -1, model_id, start_ns, pred, old, weight)
            add_quality(quality, 1, model_id, start_ns, pred, label, weight)
            updates.append((*label, pred_id, row))
        if unwritten:
            stored = self._unwritten_rows(conn, {pred_id for pred_id, _, _ in unwritten})
            for pred_id, row, label in unwritten:
                prediction = stored.get(pred_id)
                # A row past the values the span carried (a truncated list) has nothing to join.
                if prediction is not None and row < len(prediction[3]):
                    model_id, start_ns, weight, values = prediction
                    _labelled_row(inserts, quality, pred_id, model_id, start_ns, weight, values[row], label)
        if updates:
            conn.executemany(
                "UPDATE prediction_rows SET label_key = ?, label_num = ?, label_kind = ? WHERE pred_id = ? AND row = ?",
                updates,
            )
        if inserts:
            conn.executemany(_INSERT_ROW, inserts)
        write_quality(conn, quality)

    def aggregates(
        self,
        conn: Connection,
        points: Sequence[AggregatePoint],
        now: int,
        new_models: dict[tuple[str, str, str], int],
        new_instances: dict[str, int],
    ) -> int:
        """Store one request's aggregate points; a point already stored (a retry) is skipped. Returns how many
        were new. The instance that sent them is marked as sending aggregates: from then on its calls, rows,
        errors and latencies are read from these points, not from its spans."""
        stored = 0
        senders: set[int] = set()
        least, greatest = self._db.least(), self._db.greatest()
        for point in points:
            model_id = self._model_id(conn, (point.model, point.version, point.environment), point.end_ns, new_models)
            instance_id = self._instance_id(conn, point.instance, now, new_instances)
            senders.add(instance_id)
            buckets = None if point.buckets is None else json.dumps(point.buckets, separators=(",", ":"))
            inserted = conn.execute(
                _INSERT_POINT,
                (instance_id, point.metric, model_id, point.reason, point.start_ns, point.end_ns, point.value,
                 buckets, now),
            ).rowcount  # fmt: skip
            if not inserted:
                continue
            stored += 1
            if point.buckets is not None:
                hour = point.end_ns // HOUR_NS
                conn.executemany(AGGREGATE_LATENCY, [(model_id, hour, b, n) for b, n in enumerate(point.buckets) if n])
            else:
                minute = point.end_ns // MINUTE_NS
                conn.execute(AGGREGATE_MINUTES, (model_id, minute, point.metric, point.reason, point.value))
            total = _MODEL_TOTALS.get(point.metric)
            conn.execute(
                f"UPDATE models SET first_seen_ns = {least}(first_seen_ns, ?),"
                f" last_seen_ns = {greatest}(last_seen_ns, ?){f', {total} = {total} + ?' if total else ''}"
                " WHERE id = ?",
                (point.end_ns, point.end_ns, *((point.value,) if total else ()), model_id),
            )
        conn.executemany(
            "UPDATE instances SET aggregates_since_ns = ? WHERE id = ? AND aggregates_since_ns IS NULL",
            [(now, i) for i in sorted(senders)],
        )
        return stored

    def remember(self, new_models: dict[tuple[str, str, str], int], new_instances: dict[str, int]) -> None:
        """Keep the ids of models and instances a committed transaction created (never a rolled-back one's)."""
        self.model_ids.update(new_models)
        self.instance_ids.update(new_instances)
