"""Usage counts spans rejected and spans ignored.

Revision ``0003`` is schema version 3 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``_migrations``).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_V3 = """
ALTER TABLE usage ADD COLUMN rejected_spans INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN ignored_spans INTEGER NOT NULL DEFAULT 0
"""


def _run(sql: str) -> None:
    bind = op.get_bind()
    for statement in sql.split(";"):
        if statement.strip():
            bind.exec_driver_sql(statement)


def upgrade() -> None:
    _run(_V3)
