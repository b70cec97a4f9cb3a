"""Predictions keep the caller's span (their first link).

Revision ``0004`` is schema version 4 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``_migrations``).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_V4 = """
ALTER TABLE predictions ADD COLUMN link_trace_id BLOB;
ALTER TABLE predictions ADD COLUMN link_span_id BLOB
"""


def _run(sql: str) -> None:
    bind = op.get_bind()
    for statement in sql.split(";"):
        if statement.strip():
            bind.exec_driver_sql(statement)


def upgrade() -> None:
    _run(_V4)
