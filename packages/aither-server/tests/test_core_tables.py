"""The Core ``Table`` declarations match the schema Alembic migrates, and statements over them run on the
store's own connections (``store/engine.py``'s bridge), inside its transactions, on both engines."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Text, bindparam, inspect, select, update

from aither_server.store import core_tables
from aither_server.store.database import Store
from aither_server.store.engine import PerDialect, among, indexed_by, json_array_length, run, run_many, upsert
from aither_server.store.pg_bulk import STAGE_ROWS


def test_each_declared_table_has_the_migrated_tables_columns(database: Path | str) -> None:
    store = Store(database)
    try:
        schema = inspect(store.engine)
        for table in core_tables.metadata.sorted_tables:
            primary = schema.get_pk_constraint(table.name)["constrained_columns"]
            assert [c.name for c in table.primary_key.columns] == primary, table.name
            # A primary key counts as NOT NULL: SQLite (a legacy quirk) reports a rowid table's text key nullable.
            migrated = {c["name"]: c["nullable"] and c["name"] not in primary for c in schema.get_columns(table.name)}
            declared = {c.name: c.nullable for c in table.columns}
            assert declared == migrated, table.name
    finally:
        store.close()


_SET = upsert(
    core_tables.meta,
    {"key": bindparam("key"), "value": bindparam("value")},
    [core_tables.meta.c.key],
    lambda new: {"value": new.value},
)
_GET = select(core_tables.meta.c.value).where(core_tables.meta.c.key == bindparam("key"))


def test_a_core_statement_runs_in_the_stores_transaction_and_rolls_back_with_it(database: Path | str) -> None:
    store = Store(database)
    try:
        with store.write() as conn:
            run(conn, _SET, {"key": "bridge", "value": "100%?"})  # a literal % and ? pass through untouched
            run(conn, _SET, {"key": "bridge", "value": "second"})

        def set_then_fail() -> None:
            with store.write() as conn:
                run(conn, _SET, {"key": "bridge", "value": "rolled back"})
                assert run(conn, _GET, {"key": "bridge"}).fetchone() == ("rolled back",)
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError, match="abort"):
            set_then_fail()
        assert run(store.reader(), _GET, {"key": "bridge"}).fetchall() == [("second",)]
    finally:
        store.close()


def test_a_statement_missing_a_parameter_is_refused_before_it_runs(database: Path | str) -> None:
    store = Store(database)
    try:
        with store.write() as conn, pytest.raises(KeyError, match="value"):
            run(conn, _SET, {"key": "bridge"})
        assert run(store.reader(), _GET, {"key": "bridge"}).fetchall() == []
    finally:
        store.close()


_KEY_ROW = {
    "name": "n",
    "prefix": "p",
    "scopes": "ingest",
    "created_ns": 1,
}
_ADD_KEY = core_tables.api_keys.insert().values(
    id=bindparam("id"), hash=bindparam("hash"), **{k: bindparam(k) for k in _KEY_ROW}
)


def _add_keys(store: Store, ids: list[str]) -> None:
    with store.write() as conn:
        run_many(conn, _ADD_KEY, [{"id": i, "hash": i.encode(), **_KEY_ROW} for i in ids])


def test_an_in_list_takes_any_length_and_repeats_of_a_length(database: Path | str) -> None:
    store = Store(database)
    try:
        _add_keys(store, [f"k{i}" for i in range(5)])
        ids = core_tables.api_keys.c.id
        keys_in = select(ids).where(ids.in_(bindparam("ids", expanding=True)), ids != bindparam("not")).order_by(ids)
        reader = store.reader()
        for wanted in (["k1"], ["k3", "k0", "k4"], [], ["k2", "k2", "nobody"], ["k1", "k2"]):
            found = run(reader, keys_in, {"ids": wanted, "not": "k4"}).fetchall()
            assert found == [(i,) for i in sorted(set(wanted) - {"nobody", "k4"})]
        with pytest.raises(TypeError, match="IN list"):
            run(reader, keys_in, {"ids": "k1", "not": ""})  # a string is not a list of one
    finally:
        store.close()


def test_among_is_one_array_on_postgresql_and_an_in_list_on_sqlite(database: Path | str) -> None:
    store = Store(database)
    try:
        _add_keys(store, ["a", "b", "c"])
        ids = core_tables.api_keys.c.id
        statement = PerDialect(lambda dialect: select(ids).where(among(ids, "ids", dialect, Text())).order_by(ids))
        reader = store.reader()
        assert run(reader, statement, {"ids": ["c", "a", "z"]}).fetchall() == [("a",), ("c",)]
        sql = str(statement.statement(store.dialect))
        assert ("ANY" in sql) == (store.dialect == "postgresql")
    finally:
        store.close()


def test_many_rows_of_an_insert_an_upsert_and_an_update_land_on_both_engines(database: Path | str) -> None:
    """On PostgreSQL, many rows take COPY (insert), arrays (upsert, update) or a COPY'd stage (from
    ``STAGE_ROWS`` rows): each lands the same rows as one statement per row would."""
    store = Store(database)
    meta = core_tables.meta
    stored = select(meta.c.key, meta.c.value).where(meta.c.key.like("m%")).order_by(meta.c.key)
    set_value = update(meta).where(meta.c.key == bindparam("k")).values(value=bindparam("v"))
    try:
        many = [{"key": f"m{i:05}", "value": str(i)} for i in range(STAGE_ROWS + 5)]
        with store.write() as conn:
            run_many(conn, meta.insert().values(key=bindparam("key"), value=bindparam("value")), many[:3])
            run_many(conn, _SET, many)  # upsert: 3 existing keys, the rest new; staged on PostgreSQL
            run_many(conn, _SET, [{"key": "m00000", "value": "a"}, {"key": "m00001", "value": "b"}])
            run_many(conn, set_value, [{"k": "m00002", "v": "c"}, {"k": "m00003", "v": "d"}])
        found = run(store.reader(), stored).fetchall()
        assert len(found) == len(many)
        assert found[:5] == [("m00000", "a"), ("m00001", "b"), ("m00002", "c"), ("m00003", "d"), ("m00004", "4")]
    finally:
        store.close()


def test_an_index_hint_reaches_sqlite_only_and_json_lengths_read_text_on_both(database: Path | str) -> None:
    store = Store(database)
    meta = core_tables.meta
    try:
        with store.write() as conn:
            run(conn, _SET, {"key": "list", "value": "[1, 2, 3]"})
        statement = indexed_by(
            select(json_array_length(meta.c.value)).where(meta.c.key == bindparam("key")),
            meta,
            "sqlite_autoindex_meta_1",
        )
        assert run(store.reader(), statement, {"key": "list"}).fetchall() == [(3,)]
        # An index that does not exist: SQLite, which gets the hint, refuses it; PostgreSQL never sees it.
        unknown = indexed_by(select(meta.c.value), meta, "no_such_index")
        if store.dialect == "sqlite":
            with pytest.raises(sqlite3.OperationalError, match="no such index"):
                run(store.reader(), unknown)
        else:
            assert ("[1, 2, 3]",) in run(store.reader(), unknown).fetchall()
    finally:
        store.close()
