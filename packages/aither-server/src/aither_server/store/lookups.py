"""Reads by key the ingestion writers share: a trace id's indexed part, ``column IN (...)`` in as many
statements as the engine needs, and which spans of a request are stored already (a retry)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from aither_server.store.engine import Connection, Database, placeholders

__all__ = ["CHUNK", "chunks", "stored_spans", "trace_key", "where_in"]

#: Parameters per statement stay well under SQLite's limit (32766 since 3.32, 999 before).
CHUNK = 500

_Item = TypeVar("_Item")


class _Engine(Protocol):
    """What :func:`where_in` needs of a database (or of a :class:`~aither_server.store.database.Store`)."""

    @property
    def dialect(self) -> str: ...


def trace_key(trace_id: bytes) -> int:
    """The indexed part of a trace id: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(trace_id[:8], "big", signed=True)


def chunks(items: Sequence[_Item], size: int = CHUNK) -> Iterator[Sequence[_Item]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def where_in(
    db: _Engine, column: str, values: Sequence[object], pg_type: str
) -> Iterator[tuple[str, Sequence[object]]]:
    """``column`` among ``values`` as (condition, parameters), in as many statements as the engine needs:
    PostgreSQL takes one array (one statement, prepared once), SQLite lists of at most :data:`CHUNK`."""
    if db.dialect == "postgresql":
        yield f"{column} = ANY(?::{pg_type}[])", (list(values),)
        return
    for chunk in chunks(values):
        yield f"{column} IN ({placeholders(chunk)})", chunk


def stored_spans(
    conn: Connection, db: Database, table: str, keys: Sequence[tuple[bytes, bytes]]
) -> set[tuple[bytes, bytes]]:
    """The (trace id, span id) of ``keys`` already in ``table`` (``predictions`` or ``label_spans``)."""
    found: set[tuple[bytes, bytes]] = set()
    if table == "predictions":
        where = where_in(db, "trace_key", list({trace_key(k[0]) for k in keys}), "bigint")
    else:
        where = where_in(db, "trace_id", list({k[0] for k in keys}), "bytea")
    for condition, params in where:
        found.update(conn.execute(f"SELECT trace_id, span_id FROM {table} WHERE {condition}", params).fetchall())
    return found
