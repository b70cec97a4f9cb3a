"""Estimated performance: the estimators references carry and the per-hour statistics cached under them.

The tables are those of ``store/estimate_tables.py`` (SQLAlchemy Core), created from its metadata, so the
migration and ``estimate/store.py`` never differ.
"""

from __future__ import annotations

from alembic import op

from aither_server.store.estimate_tables import metadata

revision = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
