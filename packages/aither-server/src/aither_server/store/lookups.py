"""Reads by key the ingestion writers share: a trace id's indexed part, ``column IN (...)`` in as many
statements as the engine needs, and which spans of a request are stored already (a retry)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import BigInteger, LargeBinary, select
from sqlalchemy.sql import Executable

from aither_server.store.core_tables import label_spans, predictions
from aither_server.store.engine import Connection, Cursor, PerDialect, among, dialect_of, run

__all__ = ["CHUNK", "change_each_chunk", "chunks", "each_chunk", "stored_spans", "trace_key"]

#: Parameters per statement stay well under SQLite's limit (32766 since 3.32, 999 before).
CHUNK = 500

_Item = TypeVar("_Item")


def trace_key(trace_id: bytes) -> int:
    """The indexed part of a trace id: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(trace_id[:8], "big", signed=True)


def chunks(items: Sequence[_Item], size: int = CHUNK) -> Iterator[Sequence[_Item]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _runs(
    conn: Connection,
    statement: Executable | PerDialect,
    name: str,
    values: Sequence[object],
    parameters: Mapping[str, object] | None,
) -> Iterator[Cursor]:
    """``statement``, whose list parameter ``name`` is an :func:`~aither_server.store.engine.among`, run for all
    of ``values``: once on PostgreSQL (one array), in chunks of :data:`CHUNK` on SQLite; never for no values."""
    if not values:
        return
    given = parameters or {}
    if dialect_of(conn) == "postgresql":
        yield run(conn, statement, {**given, name: list(values)})
        return
    for chunk in chunks(values):
        yield run(conn, statement, {**given, name: chunk})


def each_chunk(
    conn: Connection,
    statement: Executable | PerDialect,
    name: str,
    values: Sequence[object],
    parameters: Mapping[str, object] | None = None,
) -> Iterator[Any]:
    """The rows of ``statement`` (a SELECT) for all of ``values`` (see :func:`_runs`)."""
    for cursor in _runs(conn, statement, name, values, parameters):
        yield from cursor


def change_each_chunk(
    conn: Connection,
    statement: Executable | PerDialect,
    name: str,
    values: Sequence[object],
    parameters: Mapping[str, object] | None = None,
) -> int:
    """Run ``statement`` (a DELETE or UPDATE) for all of ``values`` (see :func:`_runs`): the rows it changed."""
    return sum(cursor.rowcount for cursor in _runs(conn, statement, name, values, parameters))


def _spans_of(dialect: str, table: str) -> Executable:
    if table == "predictions":
        key = among(predictions.c.trace_key, "keys", dialect, BigInteger())
        return select(predictions.c.trace_id, predictions.c.span_id).where(key)
    key = among(label_spans.c.trace_id, "keys", dialect, LargeBinary())
    return select(label_spans.c.trace_id, label_spans.c.span_id).where(key)


_STORED_PREDICTIONS = PerDialect(lambda dialect: _spans_of(dialect, "predictions"))
_STORED_LABELS = PerDialect(lambda dialect: _spans_of(dialect, "label_spans"))


def stored_spans(conn: Connection, table: str, keys: Sequence[tuple[bytes, bytes]]) -> set[tuple[bytes, bytes]]:
    """The (trace id, span id) of ``keys`` already in ``table`` (``predictions`` or ``label_spans``)."""
    if table == "predictions":
        rows = each_chunk(conn, _STORED_PREDICTIONS, "keys", list({trace_key(k[0]) for k in keys}))
    else:
        rows = each_chunk(conn, _STORED_LABELS, "keys", list({k[0] for k in keys}))
    return {(trace_id, span_id) for trace_id, span_id in rows}
