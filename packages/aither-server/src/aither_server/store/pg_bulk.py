"""Many rows in one PostgreSQL statement: what ``executemany`` of the store's INSERTs and UPDATEs becomes.

One statement per row costs PostgreSQL a parse-bind-execute each, even pipelined; ingestion writes hundreds of
rows per request. So a plain INSERT goes through COPY, and an upsert or a keyed UPDATE becomes one statement
over ``unnest`` of one array per column (cast to the column's type); from :data:`STAGE_ROWS` rows, over a
temporary table the rows are COPY'd into, since psycopg dumps arrays in Python. A multi-row upsert may not touch
one row twice, so rows repeating a key keep the one-statement-per-row path, which applies them in order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["STAGE_ROWS", "Bulk", "arrays", "plan"]

#: From this many rows, an upsert or UPDATE reads its rows from a COPY'd temporary table instead of arrays.
STAGE_ROWS = 1000

# SQLAlchemy's spelling for psycopg: ``VALUES (%s, ...)``, ``SET column=%s``, ``WHERE table.column = %s``.
_MARK = "%s"
_INSERT = re.compile(rf"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \({_MARK}(?:, {_MARK})*\)(.*)\Z", re.S)
_CONFLICT = re.compile(r"\s*ON CONFLICT \(([\w, ]+)\) (DO .*)\Z", re.S)
_SET = rf"\w+ ?= ?{_MARK}"
_KEY = rf"(?:\w+\.)?\w+ = {_MARK}"
_UPDATE = re.compile(rf"UPDATE (\w+) SET ((?:{_SET}, )*{_SET}) WHERE ((?:{_KEY} AND )*{_KEY})\Z")


@dataclasses.dataclass(frozen=True)
class Bulk:
    """How to write many rows of one statement at once."""

    copy: bool
    """A plain INSERT: COPY the rows."""
    table: str
    columns: tuple[str, ...]
    """The parameters' columns, in order."""
    key: tuple[int, ...]
    """Positions of the parameters that must not repeat for one statement to do what the rows in turn do."""
    statement: str
    """The statement, with ``{arrays}`` where the typed ``unnest`` goes (not for COPY)."""

    def unique(self, rows: Sequence[Sequence[object]]) -> bool:
        if not self.key:
            return True
        keys = {tuple(row[i] for i in self.key) for row in rows}
        return len(keys) == len(rows)


def _split(columns: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in columns.split(","))


def plan(sql: str) -> Bulk | None:
    """The bulk form of ``sql``, or ``None`` when it has none."""
    found = _INSERT.match(sql)
    if found is not None:
        table, columns, rest = found[1], _split(found[2]), found[3]
        if not rest.strip():
            return Bulk(True, table, columns, (), "")
        conflict = _CONFLICT.match(rest)
        if conflict is None:
            return None
        target = _split(conflict[1])
        key = tuple(columns.index(c) for c in target) if conflict[2].startswith("DO UPDATE") else ()
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {{arrays}} AS u ({', '.join(columns)})"
            f" ON CONFLICT ({', '.join(target)}) {conflict[2]}"
        )
        return Bulk(False, table, columns, key, statement)
    found = _UPDATE.match(sql)
    if found is not None:
        table = found[1]
        assigned = tuple(part.split("=")[0].strip() for part in found[2].split(", "))
        keys = tuple(part.split(" = ")[0].rpartition(".")[2] for part in found[3].split(" AND "))
        columns = assigned + keys
        statement = (
            f"UPDATE {table} SET {', '.join(f'{c} = u.{c}' for c in assigned)}"
            f" FROM {{arrays}} AS u ({', '.join(columns)})"
            f" WHERE {' AND '.join(f'{table}.{k} = u.{k}' for k in keys)}"
        )
        return Bulk(False, table, columns, tuple(range(len(assigned), len(columns))), statement)
    return None


# A parameter is whatever the caller's statement binds (the DB-API's own contract): converted as it is.
_CONVERT: dict[str, Callable[[Any], float]] = {"double precision": float, "bigint": int}


def arrays(bulk: Bulk, types: dict[str, str], rows: Sequence[Sequence[object]]) -> tuple[str, list[list[object]]]:
    """The statement with its ``unnest`` of one array per column, and those arrays (each value of the column's
    Python type, so psycopg dumps every array whole)."""
    casts = []
    values = []
    for i, column in enumerate(bulk.columns):
        kind = types[column]
        casts.append(f"%s::{kind}[]")
        convert = _CONVERT.get(kind)
        column_values = [row[i] for row in rows]
        if convert is not None:
            column_values = [None if v is None else convert(v) for v in column_values]
        values.append(column_values)
    return bulk.statement.format(arrays=f"unnest({', '.join(casts)})"), values
