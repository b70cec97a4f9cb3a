"""Drift: hourly sketches of sampled features and predictions, declared columns, wide schemas, references.

The tables are those of ``_drift_store`` (SQLAlchemy Core), created from its metadata so the two never differ.
"""

from __future__ import annotations

from alembic import op

from aither_server._drift_store import metadata

revision = "0010"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
