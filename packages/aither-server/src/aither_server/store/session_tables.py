"""The dashboard's sign-in sessions table, in SQLAlchemy Core: shared by its migration (``v0012_ui_sessions``) and
the session store (``ui/sessions.py``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table

__all__ = ["metadata", "ui_sessions"]

metadata = MetaData()

ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
)
