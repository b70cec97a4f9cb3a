"""Privacy enforced by the server (docs/privacy.md): each model's (and the organisation's) policy, the audit log
of policy changes and erasures, and the hashed entity key a prediction may carry (``ml.entity``), indexed so an
erasure by entity reads only that entity's predictions.
"""

from __future__ import annotations

from aither_server.store import ddl

revision = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None

_UP = """
CREATE TABLE privacy_policies (
    model TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_ns INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
ALTER TABLE predictions ADD COLUMN entity TEXT;
CREATE INDEX predictions_entity ON predictions (entity) WHERE entity IS NOT NULL
"""

_DOWN = """
DROP INDEX predictions_entity;
ALTER TABLE predictions DROP COLUMN entity;
DROP TABLE audit_log;
DROP TABLE privacy_policies
"""


def upgrade() -> None:
    ddl.run(_UP)


def downgrade() -> None:
    ddl.run(_DOWN)
