"""Labels and label spans indexed by time, so retention deletes the old ones without scanning the tables.

Their times mostly grow, so these indexes take appends, not random inserts, on ingestion.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("CREATE INDEX labels_time ON labels (time_ns)")
    bind.exec_driver_sql("CREATE INDEX label_spans_time ON label_spans (time_ns)")
