"""The core tables as SQLAlchemy ``Table`` objects, for statements built with SQLAlchemy Core.

They describe the schema; they never create it: Alembic's revisions under ``store/alembic/versions/`` do, and
``tests/test_core_tables.py`` checks that each table here has the migrated database's columns. Statements over
them run on the store's connections through ``store/engine.py``'s ``run``.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, Text

__all__ = ["api_keys", "meta", "metadata", "usage"]

#: Of these declarations only: never ``create_all``'d.
metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("hash", LargeBinary, nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("created_ns", Integer, nullable=False),
    Column("last_used_ns", Integer),
    Column("revoked_ns", Integer),
)

#: One month's counts (``period`` as ``results.period_key`` writes it).
usage = Table(
    "usage",
    metadata,
    Column("period", Text, primary_key=True),
    Column("api_calls", Integer, nullable=False, server_default="0"),
    Column("predictions", Integer, nullable=False, server_default="0"),
    Column("labels", Integer, nullable=False, server_default="0"),
    Column("rejected_spans", Integer, nullable=False, server_default="0"),
    Column("ignored_spans", Integer, nullable=False, server_default="0"),
)
