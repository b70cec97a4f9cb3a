"""The dashboard's coarser rollups (issue 24: every page in 300 ms at a million predictions): a 30-day page reads
thirty days, not 43,200 minutes or 720 hours of latency buckets.

- ``volume_hours``: ``volume_minutes`` summed per hour; ``latency_days``: ``latency_hours`` summed per UTC day.
  Triggers on the finer table keep them (ingestion writes the finer one as before), so they hold the same sums.
- ``score_hours`` / ``score_days``: the labelled binary ``predict_proba`` rows per hour (day), score bin
  (:data:`~aither_server.model.rollup_keys.SCORE_BINS` of equal width) and label: rows, weighted rows, sum of
  scores. Kept with ``quality_hours`` (``store/rollups.py``), so a label that joins or is replaced moves them.

Existing data is summed into them here.
"""

from __future__ import annotations

from alembic import op

from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, SCORE_BINS
from aither_server.store import ddl

revision = "0017"
down_revision: str | None = "0016"
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE volume_hours (
    model_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (model_id, hour)
) WITHOUT ROWID;

CREATE TABLE latency_days (
    model_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (model_id, day, bucket)
) WITHOUT ROWID;

CREATE TABLE score_hours (
    model_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    bin INTEGER NOT NULL,
    label_key TEXT NOT NULL,
    rows INTEGER NOT NULL,
    w_rows REAL NOT NULL,
    score_sum REAL NOT NULL,
    PRIMARY KEY (model_id, hour, bin, label_key)
) WITHOUT ROWID;

CREATE TABLE score_days (
    model_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    bin INTEGER NOT NULL,
    label_key TEXT NOT NULL,
    rows INTEGER NOT NULL,
    w_rows REAL NOT NULL,
    score_sum REAL NOT NULL,
    PRIMARY KEY (model_id, day, bin, label_key)
) WITHOUT ROWID
"""

_MINUTES_PER_HOUR = 60
_HOURS_PER_DAY = DAY_NS // HOUR_NS

#: (new row's key and sums, their names) for the volume and latency upserts the triggers run.
_VOLUME_UPSERT = (
    "INSERT INTO volume_hours (model_id, hour, calls, errors, rows)"
    f" VALUES (NEW.model_id, NEW.minute / {_MINUTES_PER_HOUR}, NEW.calls - {{old_calls}},"
    " NEW.errors - {old_errors}, NEW.rows - {old_rows})"
    " ON CONFLICT (model_id, hour) DO UPDATE SET calls = volume_hours.calls + excluded.calls,"
    " errors = volume_hours.errors + excluded.errors, rows = volume_hours.rows + excluded.rows"
)
_LATENCY_UPSERT = (
    "INSERT INTO latency_days (model_id, day, bucket, calls)"
    f" VALUES (NEW.model_id, NEW.hour / {_HOURS_PER_DAY}, NEW.bucket, NEW.calls - {{old_calls}})"
    " ON CONFLICT (model_id, day, bucket) DO UPDATE SET calls = latency_days.calls + excluded.calls"
)


def _volume(old: bool) -> str:
    return _VOLUME_UPSERT.format(
        old_calls="OLD.calls" if old else "0",
        old_errors="OLD.errors" if old else "0",
        old_rows="OLD.rows" if old else "0",
    )


def _latency(old: bool) -> str:
    return _LATENCY_UPSERT.format(old_calls="OLD.calls" if old else "0")


def _sqlite_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER volume_hours_insert AFTER INSERT ON volume_minutes BEGIN {_volume(False)}; END",
        f"CREATE TRIGGER volume_hours_update AFTER UPDATE ON volume_minutes BEGIN {_volume(True)}; END",
        f"CREATE TRIGGER latency_days_insert AFTER INSERT ON latency_hours BEGIN {_latency(False)}; END",
        f"CREATE TRIGGER latency_days_update AFTER UPDATE ON latency_hours BEGIN {_latency(True)}; END",
    ]


def _postgres_triggers() -> list[str]:
    out = []
    for name, table, insert, update in (
        ("volume_hours_add", "volume_minutes", _volume(False), _volume(True)),
        ("latency_days_add", "latency_hours", _latency(False), _latency(True)),
    ):
        out.append(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF TG_OP = 'INSERT' THEN {insert}; ELSE {update}; END IF; RETURN NULL; END $$"
        )
        out.append(f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
    return out


def _score_bin(column: str) -> str:
    """The score's bin, as ``model/rollup_keys.score_bin`` places it: the first i with score < (i + 1) / BINS."""
    cases = " ".join(f"WHEN {column} < {(i + 1) / SCORE_BINS!r} THEN {i}" for i in range(SCORE_BINS - 1))
    return f"CASE {cases} ELSE {SCORE_BINS - 1} END"


def upgrade() -> None:
    ddl.run(_TABLES)
    for statement in _postgres_triggers() if ddl.is_postgres() else _sqlite_triggers():
        _exec(statement)
    _exec(
        f"INSERT INTO volume_hours SELECT model_id, minute / {_MINUTES_PER_HOUR}, sum(calls), sum(errors), sum(rows)"
        " FROM volume_minutes GROUP BY 1, 2"
    )
    _exec(
        f"INSERT INTO latency_days SELECT model_id, hour / {_HOURS_PER_DAY}, bucket, sum(calls)"
        " FROM latency_hours GROUP BY 1, 2, 3"
    )
    for table, unit in (("score_hours", HOUR_NS), ("score_days", DAY_NS)):
        _exec(
            f"INSERT INTO {table} SELECT model_id, start_ns / {unit}, {_score_bin('score')}, label_key, count(*),"
            " sum(coalesce(weight, 1.0)), sum(score) FROM prediction_rows"
            " WHERE kind = 2 AND label_kind = 0 AND score IS NOT NULL AND label_key IS NOT NULL GROUP BY 1, 2, 3, 4"
        )


def _exec(statement: str) -> None:
    op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    if ddl.is_postgres():
        for name, table in (("volume_hours_add", "volume_minutes"), ("latency_days_add", "latency_hours")):
            _exec(f"DROP TRIGGER {name} ON {table}")
            _exec(f"DROP FUNCTION {name}()")
    else:
        for name in ("volume_hours_insert", "volume_hours_update", "latency_days_insert", "latency_days_update"):
            _exec(f"DROP TRIGGER {name}")
    for table in ("volume_hours", "latency_days", "score_hours", "score_days"):
        _exec(f"DROP TABLE {table}")
