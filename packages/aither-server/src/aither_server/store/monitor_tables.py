"""The monitors' tables, in SQLAlchemy Core: defined here, below every layer that reads them, so the migration
that creates them (``v0011_monitors``) and the monitor store (``monitors/store.py``) share one definition."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

from aither_server.store.model_keyed import names

__all__ = ["metadata", "monitor_deliveries", "monitor_states", "monitors"]


def _entry_of_monitor() -> tuple[Column[int], Column[str]]:
    """A history row's own id (the order of rows of one ``at_ns``) and its monitor's."""
    return Column("id", Integer, primary_key=True, autoincrement=True), Column("monitor_id", String(40), nullable=False)


metadata = MetaData()

monitors = Table(
    "monitors",
    metadata,
    Column("id", String(40), primary_key=True),
    *names("name", "model"),
    *names("version", "environment", nullable=True),
    Column("metric", String(1100), nullable=False),
    Column("op", String(2), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("window", String(16), nullable=False),
    Column("min_rows", Integer, nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("secret", String(80), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("state", String(8), nullable=False),
    Column("value", Float, nullable=True),
    Column("rows", BigInteger, nullable=True),
    Column("last_evaluated_ns", BigInteger, nullable=True),
    Column("claimed_until_ns", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

monitor_states = Table(
    "monitor_states",
    metadata,
    *_entry_of_monitor(),
    Column("state", String(8), nullable=False),
    Column("previous", String(8), nullable=False),
    Column("value", Float, nullable=True),
    Column("rows", BigInteger, nullable=True),
    Column("at_ns", BigInteger, nullable=False),
    Index("monitor_states_by_monitor", "monitor_id", "at_ns"),
)

monitor_deliveries = Table(
    "monitor_deliveries",
    metadata,
    *_entry_of_monitor(),
    Column("event_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("at_ns", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    Index("monitor_deliveries_by_monitor", "monitor_id", "at_ns"),
)
