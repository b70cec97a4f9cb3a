"""Embedding drift: each hour's reservoir of projected live embeddings and each reference's projected rows
(``drift/embedding_store.py``, whose Core tables these are).

Written with Alembic's operations, not from the module's metadata, so this revision stays what it was when the
tables change later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_embeddings",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("environment", sa.String(256), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("seen", sa.BigInteger, nullable=False),
        sa.Column("vectors", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "environment", "hour", "dim"),
    )
    op.create_table(
        "drift_embedding_references",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vectors", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "name"),
    )


def downgrade() -> None:
    op.drop_table("drift_embedding_references")
    op.drop_table("drift_embeddings")
