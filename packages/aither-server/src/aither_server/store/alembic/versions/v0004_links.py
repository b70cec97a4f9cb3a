"""Predictions keep the caller's span (their first link).

Revision ``0004`` is schema version 4 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``store/migrations.py``).
"""

from __future__ import annotations

from aither_server.store import ddl

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_V4 = """
ALTER TABLE predictions ADD COLUMN link_trace_id BLOB;
ALTER TABLE predictions ADD COLUMN link_span_id BLOB
"""


def upgrade() -> None:
    ddl.run(_V4)
