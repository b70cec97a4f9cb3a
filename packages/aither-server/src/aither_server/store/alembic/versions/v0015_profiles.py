"""The keys of the profiles profile-only SDKs sent (``drift_profile_reports`` of ``drift/store.py``), so a
retried ``/v1/metrics`` body's sketches are merged into drift's hours once.

Written with Alembic's operations, not from ``drift/store.py``'s metadata, so this revision stays what it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_profile_reports",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_drift_profile_reports_end_ns", "drift_profile_reports", ["end_ns"])


def downgrade() -> None:
    op.drop_index("ix_drift_profile_reports_end_ns", "drift_profile_reports")
    op.drop_table("drift_profile_reports")
