"""Labels know their prediction's rows, to list those that cannot join.

Revision ``0005`` is schema version 5 of the hand-written runner this replaced: a database it migrated is
stamped with the matching revision and upgraded from there (``store/migrations.py``).
"""

from __future__ import annotations

from alembic import op

from aither_server.store import ddl

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

_V5 = """
ALTER TABLE labels ADD COLUMN received_ns INTEGER;
ALTER TABLE labels ADD COLUMN pred_rows INTEGER;
ALTER TABLE labels ADD COLUMN model_id INTEGER;
CREATE INDEX labels_unjoined ON labels (received_ns) WHERE pred_rows IS NULL OR row >= pred_rows
"""


def upgrade() -> None:
    ddl.run(_V5)
    if ddl.is_postgres():
        return  # PostgreSQL databases start with this code: no labels from before to bring up to date
    bind = op.get_bind()
    # Labels stored before: received when their span says; joined to the prediction of their trace, if any.
    raw = bind.connection.driver_connection
    assert raw is not None  # an open connection
    raw.create_function(
        "aither_trace_key", 1, lambda trace_id: int.from_bytes(trace_id[:8], "big", signed=True), deterministic=True
    )
    bind.exec_driver_sql(
        "UPDATE labels SET received_ns = time_ns, (pred_rows, model_id) = (SELECT p.n_rows, p.model_id"
        " FROM predictions p WHERE p.trace_key = aither_trace_key(labels.trace_id) AND p.trace_id = labels.trace_id"
        " ORDER BY p.start_ns, p.id LIMIT 1)"
    )
