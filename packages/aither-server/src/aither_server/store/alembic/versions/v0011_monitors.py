"""Monitors: their definitions and current state, the state history, and webhook deliveries.

The tables are those of ``store/monitor_tables.py`` (SQLAlchemy Core), created from its metadata, so the
migration and the monitor store never differ.
"""

from __future__ import annotations

from alembic import op

from aither_server.store.monitor_tables import metadata

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
