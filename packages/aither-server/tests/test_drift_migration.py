"""Revision 0010 creates exactly the tables ``drift/store.py`` queries: same columns, types and primary keys."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from aither_server.drift.store import metadata
from aither_server.store.migrations import HEAD, migrate, revision_of


def test_the_migration_creates_the_tables_the_drift_store_defines(tmp_path: Path) -> None:
    db = tmp_path / "aither.db"
    migrate(db)
    assert revision_of(db) == HEAD  # 0010 made these tables; later revisions leave them as they are
    engine = create_engine(f"sqlite:///{db}")
    try:
        found = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns], table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
                # The DDL each side's type compiles to on this engine: VARCHAR(256), BIGINT, FLOAT, BLOB...
                made = columns[column.name]["type"].compile(dialect=engine.dialect)
                assert made == column.type.compile(dialect=engine.dialect), (table.name, column.name)
            primary = found.get_pk_constraint(table.name)["constrained_columns"]
            assert primary == [c.name for c in table.primary_key.columns], table.name
    finally:
        engine.dispose()
