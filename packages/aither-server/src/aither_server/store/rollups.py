"""Rollup writes: commutative upserts (``x = t.x + excluded.x``), so concurrent writers add up exactly, and
the quality deltas a labelled row adds or takes away (to ``quality_hours`` and ``quality_days``). The tables
and their keys are described in ``model/rollup_keys.py``."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeGuard, TypeVar

from sqlalchemy import Delete, Table, bindparam, delete, literal_column

from aither_server.model.records import KIND_CLASS, KIND_PROBA
from aither_server.model.rollup_keys import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    aggregate_bucket,
    latency_bucket,
    quality_key,
    score_bin,
)
from aither_server.store.core_tables import (
    aggregate_latency_hours,
    aggregate_minutes,
    instance_latency_hours,
    instance_minutes,
    instance_models,
    latency_days,
    latency_hours,
    quality_days,
    quality_hours,
    score_days,
    score_hours,
    volume_hours,
    volume_minutes,
)
from aither_server.store.engine import Connection, PerDialect, run_many, upsert

__all__ = [
    "AGGREGATE_LATENCY",
    "AGGREGATE_MINUTES",
    "CallCounts",
    "INSTANCE_LATENCY",
    "INSTANCE_MINUTES",
    "INSTANCE_MODELS",
    "KEYS",
    "LATENCY",
    "QualityDeltas",
    "VOLUME",
    "add_quality",
    "count_call",
    "write_quality",
]

#: Every rollup table's key (its primary key): ``model_id``, then the time unit its cells cover (but for
#: ``instance_models``: an instance's totals), then the rest.
KEYS = {
    table.name: tuple(column.name for column in table.primary_key.columns)
    for table in (
        volume_minutes, latency_hours, quality_hours, instance_minutes, instance_models, instance_latency_hours,
        aggregate_minutes, aggregate_latency_hours, volume_hours, latency_days, score_hours, score_days, quality_days,
    )
}  # fmt: skip


def _adding(table: Table, added: Sequence[str]) -> PerDialect:
    """The commutative upsert of a cell of ``table``: ``x = table.x + excluded.x`` for each of ``added`` (one
    ``bindparam`` per column, named as it; pg_bulk's array and staged forms on PostgreSQL)."""
    columns, key = table.c, KEYS[table.name]
    return upsert(
        table,
        {name: bindparam(name) for name in (*key, *added)},
        [columns[name] for name in key],
        lambda new: {name: columns[name] + new[name] for name in added},
    )


def _emptied(table: Table) -> Delete:
    """The delete of a cell of ``table`` once no row is counted there."""
    columns = table.c
    # literal_column: a constant of the SQL, not a parameter to bind on each of the many rows.
    key = (columns[name] == bindparam(name) for name in KEYS[table.name])
    return delete(table).where(*key, columns.rows == literal_column("0"))


_CALLS = ("calls", "errors", "rows")
VOLUME = _adding(volume_minutes, _CALLS)
LATENCY = _adding(latency_hours, ("calls",))
_QUALITY_SUMS = ("rows", "n_num", "sum_abs", "sum_sq", "w_rows", "w_num", "w_abs", "w_sq")
#: ``quality_hours`` and ``quality_days`` (v0018: the same cells per UTC day): (key, upsert, emptied cell's delete).
_QUALITY = {
    table.name: (KEYS[table.name], _adding(table, _QUALITY_SUMS), _emptied(table))
    for table in (quality_hours, quality_days)
}
_HOURS_PER_DAY = DAY_NS // HOUR_NS
INSTANCE_MODELS = _adding(instance_models, _CALLS)
INSTANCE_MINUTES = _adding(instance_minutes, _CALLS)
INSTANCE_LATENCY = _adding(instance_latency_hours, ("calls",))
AGGREGATE_MINUTES = _adding(aggregate_minutes, ("value",))
AGGREGATE_LATENCY = _adding(aggregate_latency_hours, ("calls",))
_SCORE_SUMS = ("rows", "w_rows", "score_sum")
#: ``score_hours`` and ``score_days`` (v0017), kept with ``quality_hours``: keyed by their table's name in the
#: deltas. (key, upsert, emptied cell's delete, the unit in ns.)
_SCORES = {
    table.name: (KEYS[table.name], _adding(table, _SCORE_SUMS), _emptied(table), unit_ns)
    for table, unit_ns in ((score_hours, HOUR_NS), (score_days, DAY_NS))
}


def _named(names: Sequence[str], rows: Iterable[Sequence[object]]) -> list[dict[str, object]]:
    """Rows of values in ``names``' order as the by-name mappings ``run_many`` takes."""
    return [dict(zip(names, row, strict=True)) for row in rows]


_VOLUME_NAMES = (*KEYS["volume_minutes"], *_CALLS)
_LATENCY_NAMES = (*KEYS["latency_hours"], "calls")
_INSTANCE_LATENCY_NAMES = (*KEYS["instance_latency_hours"], "calls")
_INSTANCE_MODELS_NAMES = (*KEYS["instance_models"], *_CALLS)
_INSTANCE_MINUTES_NAMES = (*KEYS["instance_minutes"], *_CALLS)


#: A ``quality_hours`` cell's key: (model_id, hour, kind, label_kind, pred_key, label_key, scored).
QualityKey = tuple[int, int, int, int, str, str, int]
#: A score table's cell: (table, model_id, hour or day, bin, label_key).
ScoreKey = tuple[str, int, int, int, str]
#: The cells' deltas (``rows`` first) by key.
QualityDeltas = dict[QualityKey | ScoreKey, list[float]]
#: A labelled row's prediction: (kind, pred_key, pred_num, score).
PredictionCell = tuple[int | None, str | None, float | None, float | None]
#: A label's (label_key, label_num, label_kind).
LabelCell = tuple[str | None, float | None, int]
_Key = TypeVar("_Key", bound=Hashable)


def add_quality(
    deltas: QualityDeltas,
    sign: int,
    model_id: int,
    start_ns: int,
    pred: PredictionCell,
    label: LabelCell,
    weight: float | None,
) -> None:
    """Add (``sign`` 1) or remove (-1) one labelled row's contribution to ``quality_hours``.

    ``pred`` is (kind, pred_key, pred_num, score); ``label`` is (label_key, label_num, label_kind); ``weight``
    the calls its span stands for (``None``: 1).
    """
    kind, pred_key, pred_num, score = pred
    label_key, label_num, label_kind = label
    key = (model_id, start_ns // HOUR_NS, *quality_key(kind, label_kind, pred_key, label_key, score))
    cell = deltas.get(key)
    if cell is None:
        cell = deltas[key] = [0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    w = sign * (1.0 if weight is None else weight)
    cell[0] += sign
    cell[4] += w
    if kind == KIND_PROBA and label_kind == KIND_CLASS and score is not None and label_key is not None:
        bin_ = score_bin(score)
        for table, (_, _, _, unit_ns) in _SCORES.items():
            scores = deltas.setdefault((table, model_id, start_ns // unit_ns, bin_, label_key), [0, 0.0, 0.0])
            scores[0] += sign
            scores[1] += w
            scores[2] += sign * score
    if pred_num is not None and label_num is not None:
        diff = pred_num - label_num
        cell[1] += sign
        cell[2] += sign * abs(diff)
        cell[3] += sign * diff * diff
        cell[5] += w
        cell[6] += w * abs(diff)
        cell[7] += w * diff * diff


def count_call(counts: dict[_Key, list[int]], key: _Key, status: int, n_rows: int) -> None:
    """One more call (and its error status and rows) in a rollup being built."""
    found = counts.get(key)
    if found is None:
        counts[key] = [1, status, n_rows]
    else:
        found[0] += 1
        found[1] += status
        found[2] += n_rows


def _is_quality_key(key: QualityKey | ScoreKey) -> TypeGuard[QualityKey]:
    return not isinstance(key[0], str)


class CallCounts:
    """The per-call rollups of some prediction spans, being built: calls, errors and rows per model and minute,
    latencies per hour, and per instance (0: none given) the calls and the latencies in the aggregate
    histogram's buckets. Ingestion adds them (:meth:`write`); erasure takes them away."""

    def __init__(self) -> None:
        self.volume: dict[tuple[int, int], list[int]] = {}
        self.latency: dict[tuple[int, int, int], int] = {}
        self.instance_latency: dict[tuple[int, int, int, int], int] = {}
        self.instance_totals: dict[tuple[int, int], list[int]] = {}
        self.instance_minutes: dict[tuple[int, int, int], list[int]] = {}

    def add(
        self, model_id: int, start_ns: int, latency_ns: int, status: int, n_rows: int, instance_id: int | None
    ) -> None:
        """One call (``status`` 1: an error) of ``n_rows`` rows."""
        minute, hour = start_ns // MINUTE_NS, start_ns // HOUR_NS
        count_call(self.volume, (model_id, minute), status, n_rows)
        bucket = (model_id, hour, latency_bucket(latency_ns))
        self.latency[bucket] = self.latency.get(bucket, 0) + 1
        shared = (model_id, hour, instance_id or 0, aggregate_bucket(latency_ns))
        self.instance_latency[shared] = self.instance_latency.get(shared, 0) + 1
        if instance_id is not None:
            count_call(self.instance_totals, (model_id, instance_id), status, n_rows)
            count_call(self.instance_minutes, (model_id, minute, instance_id), status, n_rows)

    def write(self, conn: Connection, sign: int = 1) -> None:
        """Add the counts to their rollups, or with ``sign`` -1 take them away (erasure): the same commutative
        upserts either way, so a concurrent writer (another process) still adds up exactly."""
        run_many(
            conn, VOLUME, _named(_VOLUME_NAMES, ((*k, *(sign * x for x in v)) for k, v in sorted(self.volume.items())))
        )
        run_many(conn, LATENCY, _named(_LATENCY_NAMES, ((*k, sign * v) for k, v in sorted(self.latency.items()))))
        run_many(
            conn,
            INSTANCE_LATENCY,
            _named(_INSTANCE_LATENCY_NAMES, ((*k, sign * v) for k, v in sorted(self.instance_latency.items()))),
        )
        if self.instance_totals:
            totals = ((*k, *(sign * x for x in v)) for k, v in sorted(self.instance_totals.items()))
            run_many(conn, INSTANCE_MODELS, _named(_INSTANCE_MODELS_NAMES, totals))
            minutes = ((*k, *(sign * x for x in v)) for k, v in sorted(self.instance_minutes.items()))
            run_many(conn, INSTANCE_MINUTES, _named(_INSTANCE_MINUTES_NAMES, minutes))


def write_quality(conn: Connection, deltas: QualityDeltas) -> None:
    """Add ``deltas`` to ``quality_hours`` and ``quality_days``; cells left with no rows go."""
    hours = sorted((k, v) for k, v in deltas.items() if _is_quality_key(k))
    days: dict[QualityKey, list[float]] = {}
    for key, v in hours:
        cell = days.setdefault((key[0], key[1] // _HOURS_PER_DAY, *key[2:]), [0] * len(v))
        for i, x in enumerate(v):
            cell[i] += x
    for table, quality in (("quality_hours", hours), ("quality_days", sorted(days.items()))):
        names, adding, emptied = _QUALITY[table]
        changed = [(*k, *v) for k, v in quality if any(v)]
        if changed:
            run_many(conn, adding, _named((*names, *_QUALITY_SUMS), changed))
            run_many(conn, emptied, _named(names, (k for k, v in quality if v[0] <= 0)))
    for table, (score_key, adding, emptied, _) in _SCORES.items():
        cells = sorted((k[1:], v) for k, v in deltas.items() if k[0] == table and any(v))
        if cells:
            run_many(conn, adding, _named((*score_key, *_SCORE_SUMS), ((*k, *v) for k, v in cells)))
            run_many(conn, emptied, _named(score_key, (k for k, v in cells if v[0] <= 0)))
