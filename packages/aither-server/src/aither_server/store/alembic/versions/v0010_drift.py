"""Drift: per-hour and per-day sketches of sampled features and predictions, declared columns, wide schemas
and named references (``drift/store.py``, whose Core tables these are; ``test_drift_migration`` checks they agree).

Written with Alembic's operations, not from ``_drift_store.metadata``, so this revision stays what it was when
the tables change later (a later revision alters them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_sketches",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("environment", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("feature", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("span", sa.Integer, nullable=False),
        sa.Column("dtype", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("nulls", sa.BigInteger, nullable=False),
        sa.Column("min", sa.Float, nullable=True),
        sa.Column("max", sa.Float, nullable=True),
        sa.Column("sketch", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "environment", "span", "hour", "role", "feature", "kind"),
    )
    op.create_table(
        "drift_columns",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("environment", sa.String(256), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("feature", sa.String(1024), nullable=False),
        sa.Column("dtype", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "environment", "hour", "feature", "dtype"),
    )
    op.create_table(
        "drift_schemas",
        sa.Column("hash", sa.String(32), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "drift_references",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("environment", sa.String(256), nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "name"),
    )


def downgrade() -> None:
    for table in ("drift_references", "drift_schemas", "drift_columns", "drift_sketches"):
        op.drop_table(table)
