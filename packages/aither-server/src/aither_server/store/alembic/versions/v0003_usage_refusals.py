"""Usage counts spans rejected and spans ignored.

Revision ``0003`` is schema version 3 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``store/migrations.py``).
"""

from __future__ import annotations

from aither_server.store import ddl

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_V3 = """
ALTER TABLE usage ADD COLUMN rejected_spans INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN ignored_spans INTEGER NOT NULL DEFAULT 0
"""


def upgrade() -> None:
    ddl.run(_V3)
