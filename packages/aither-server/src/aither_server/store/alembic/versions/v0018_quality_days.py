"""``quality_days``: ``quality_hours`` summed per UTC day (issue 24: a 30-day model page's quality groups, its
diagnostics' confusion matrix and its quality by segment read thirty days, not 720 hours). Kept with
``quality_hours`` by ``store/rollups.py``'s ``write_quality`` (ingestion, a replaced label, erasure), so it
holds the same sums. Existing data is summed into it here.
"""

from __future__ import annotations

from alembic import op

from aither_server.model.rollup_keys import DAY_NS, HOUR_NS
from aither_server.store import ddl

revision = "0018"
down_revision: str | None = "0017"
branch_labels = None
depends_on = None

_TABLE = """
CREATE TABLE quality_days (
    model_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    label_kind INTEGER NOT NULL,
    pred_key TEXT NOT NULL,
    label_key TEXT NOT NULL,
    scored INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    n_num INTEGER NOT NULL,
    sum_abs REAL NOT NULL,
    sum_sq REAL NOT NULL,
    w_rows REAL NOT NULL,
    w_num REAL NOT NULL,
    w_abs REAL NOT NULL,
    w_sq REAL NOT NULL,
    PRIMARY KEY (model_id, day, kind, label_kind, pred_key, label_key, scored)
) WITHOUT ROWID
"""


def upgrade() -> None:
    ddl.run(_TABLE)
    op.get_bind().exec_driver_sql(
        f"INSERT INTO quality_days SELECT model_id, hour / {DAY_NS // HOUR_NS}, kind, label_kind, pred_key,"
        " label_key, scored, sum(rows), sum(n_num), sum(sum_abs), sum(sum_sq), sum(w_rows), sum(w_num),"
        " sum(w_abs), sum(w_sq) FROM quality_hours GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )


def downgrade() -> None:
    op.get_bind().exec_driver_sql("DROP TABLE quality_days")
