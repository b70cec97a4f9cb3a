"""The Core ``Table`` declarations match the schema Alembic migrates, and statements over them run on the
store's own connections (``store/engine.py``'s bridge), inside its transactions, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, inspect, select

from aither_server.store import core_tables
from aither_server.store.database import Store
from aither_server.store.engine import run, upsert


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


def test_a_statement_with_an_in_list_is_refused_not_run_half_filled(database: Path | str) -> None:
    store = Store(database)
    try:
        keys_in = select(core_tables.api_keys.c.id).where(
            core_tables.api_keys.c.id.in_(bindparam("ids", expanding=True))
        )
        with pytest.raises(ValueError, match="IN lists"):
            run(store.reader(), keys_in, {"ids": ["a", "b"]})
    finally:
        store.close()
