"""The core tables as SQLAlchemy ``Table`` objects, for statements built with SQLAlchemy Core.

They describe the schema; they never create it: Alembic's revisions under ``store/alembic/versions/`` do, and
``tests/test_core_tables.py`` checks that each table here has the migrated database's columns. Statements over
them run on the store's connections through ``store/engine.py``'s ``run``.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, LargeBinary, MetaData, Table, Text, UniqueConstraint

__all__ = [
    "aggregate_latency_hours",
    "aggregate_minutes",
    "aggregate_points",
    "api_keys",
    "audit_log",
    "instance_latency_hours",
    "instance_minutes",
    "instance_models",
    "instances",
    "label_spans",
    "labels",
    "latency_days",
    "latency_hours",
    "meta",
    "metadata",
    "models",
    "prediction_rows",
    "predictions",
    "privacy_policies",
    "quality_days",
    "quality_hours",
    "score_days",
    "score_hours",
    "usage",
    "volume_hours",
    "volume_minutes",
]

#: Of these declarations only: never ``create_all``'d.
metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("hash", LargeBinary, nullable=False, unique=True),
    Column("scopes", Text, nullable=False),
    Column("created_ns", Integer, nullable=False),
    Column("last_used_ns", Integer),
    Column("revoked_ns", Integer),
)

#: One month's counts (``period`` as ``results.period_key`` writes it).
usage = Table(
    "usage",
    metadata,
    Column("period", Text, primary_key=True),
    Column("api_calls", Integer, nullable=False, server_default="0"),
    Column("predictions", Integer, nullable=False, server_default="0"),
    Column("labels", Integer, nullable=False, server_default="0"),
    Column("rejected_spans", Integer, nullable=False, server_default="0"),
    Column("ignored_spans", Integer, nullable=False, server_default="0"),
)

aggregate_latency_hours = Table(
    "aggregate_latency_hours",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
)

aggregate_minutes = Table(
    "aggregate_minutes",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("reason", Text, primary_key=True),
    Column("value", Integer, nullable=False),
)

aggregate_points = Table(
    "aggregate_points",
    metadata,
    Column("instance_id", Integer, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("model_id", Integer, primary_key=True),
    Column("reason", Text, primary_key=True),
    Column("start_ns", Integer, primary_key=True),
    Column("end_ns", Integer, primary_key=True),
    Column("value", Integer, nullable=False),
    Column("buckets", Text),
    Column("received_ns", Integer, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("time_ns", Integer, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", Text, nullable=False),
)

instance_latency_hours = Table(
    "instance_latency_hours",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("instance_id", Integer, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
)

instance_minutes = Table(
    "instance_minutes",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("instance_id", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
)

instance_models = Table(
    "instance_models",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("instance_id", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("instance", Text, nullable=False, unique=True),
    Column("first_seen_ns", Integer, nullable=False),
    Column("aggregates_since_ns", Integer),
)

label_spans = Table(
    "label_spans",
    metadata,
    Column("trace_id", LargeBinary, primary_key=True),
    Column("span_id", LargeBinary, primary_key=True),
    Column("row", Integer),
    Column("label", Text, nullable=False),
    Column("time_ns", Integer, nullable=False),
    Column("received_ns", Integer, nullable=False),
)

labels = Table(
    "labels",
    metadata,
    Column("trace_id", LargeBinary, primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("label", Text, nullable=False),
    Column("label_key", Text),
    Column("label_num", Float),
    Column("label_kind", Integer, nullable=False),
    Column("time_ns", Integer, nullable=False),
    Column("received_ns", Integer),
    Column("pred_rows", Integer),
    Column("model_id", Integer),
)

latency_days = Table(
    "latency_days",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
)

latency_hours = Table(
    "latency_hours",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("first_seen_ns", Integer, nullable=False),
    Column("last_seen_ns", Integer, nullable=False),
    Column("calls", Integer, nullable=False, server_default="0"),
    Column("predictions", Integer, nullable=False, server_default="0"),
    Column("sampled", Integer, nullable=False, server_default="0"),
    Column("aggregate_calls", Integer, nullable=False, server_default="0"),
    Column("aggregate_rows", Integer, nullable=False, server_default="0"),
    Column("aggregate_errors", Integer, nullable=False, server_default="0"),
    UniqueConstraint("name", "version", "environment"),
)

prediction_rows = Table(
    "prediction_rows",
    metadata,
    Column("pred_id", Integer, primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("start_ns", Integer, nullable=False),
    Column("kind", Integer),
    Column("pred_key", Text),
    Column("pred_num", Float),
    Column("score", Float),
    Column("proba", Text),
    Column("label_key", Text),
    Column("label_num", Float),
    Column("label_kind", Integer),
    Column("weight", Float),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trace_key", Integer, nullable=False),
    Column("trace_id", LargeBinary, nullable=False),
    Column("span_id", LargeBinary, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("method", Text),
    Column("framework", Text),
    Column("start_ns", Integer, nullable=False),
    Column("latency_ns", Integer, nullable=False),
    Column("status", Integer, nullable=False),
    Column("error", Text),
    Column("n_rows", Integer, nullable=False),
    Column("batch_size", Integer),
    Column("features", Text),
    Column("prediction", Text),
    Column("service_name", Text),
    Column("received_ns", Integer, nullable=False),
    Column("instance_id", Integer),
    Column("sample_rate", Float),
    Column("link_trace_id", LargeBinary),
    Column("link_span_id", LargeBinary),
    Column("entity", Text),
)

privacy_policies = Table(
    "privacy_policies",
    metadata,
    Column("model", Text, primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_ns", Integer, nullable=False),
    Column("updated_by", Text, nullable=False),
)

quality_days = Table(
    "quality_days",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("kind", Integer, primary_key=True),
    Column("label_kind", Integer, primary_key=True),
    Column("pred_key", Text, primary_key=True),
    Column("label_key", Text, primary_key=True),
    Column("scored", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("n_num", Integer, nullable=False),
    Column("sum_abs", Float, nullable=False),
    Column("sum_sq", Float, nullable=False),
    Column("w_rows", Float, nullable=False),
    Column("w_num", Float, nullable=False),
    Column("w_abs", Float, nullable=False),
    Column("w_sq", Float, nullable=False),
)

quality_hours = Table(
    "quality_hours",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("kind", Integer, primary_key=True),
    Column("label_kind", Integer, primary_key=True),
    Column("pred_key", Text, primary_key=True),
    Column("label_key", Text, primary_key=True),
    Column("scored", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("n_num", Integer, nullable=False),
    Column("sum_abs", Float, nullable=False),
    Column("sum_sq", Float, nullable=False),
    Column("w_rows", Float, nullable=False, server_default="0"),
    Column("w_num", Float, nullable=False, server_default="0"),
    Column("w_abs", Float, nullable=False, server_default="0"),
    Column("w_sq", Float, nullable=False, server_default="0"),
)

score_days = Table(
    "score_days",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("bin", Integer, primary_key=True),
    Column("label_key", Text, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("w_rows", Float, nullable=False),
    Column("score_sum", Float, nullable=False),
)

score_hours = Table(
    "score_hours",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("bin", Integer, primary_key=True),
    Column("label_key", Text, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("w_rows", Float, nullable=False),
    Column("score_sum", Float, nullable=False),
)

volume_hours = Table(
    "volume_hours",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
)

volume_minutes = Table(
    "volume_minutes",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
)
