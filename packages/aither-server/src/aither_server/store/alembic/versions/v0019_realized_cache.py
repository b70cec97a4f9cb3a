"""The realized figures' per-hour cache beside the estimate's (``realized_hours``, ``store/estimate_tables.py``),
so a 30-day answer with realized figures reads one blob per hour instead of every labelled row.
"""

from __future__ import annotations

from alembic import op

from aither_server.store.estimate_tables import realized_metadata

revision = "0019"
down_revision: str | None = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    realized_metadata.create_all(op.get_bind())


def downgrade() -> None:
    realized_metadata.drop_all(op.get_bind())
