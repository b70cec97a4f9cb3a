"""Drift's tables and their queries, in SQLAlchemy Core so the same statements run on SQLite and PostgreSQL.

- ``drift_sketches``: one profile (``aither.profile``: a serialised KLL or frequent-items sketch with counts,
  nulls, min, max) per model, version, environment, bucket, role (``feature`` or ``prediction``), column and
  kind. A bucket is an hour (``span`` 1, from ``hour``) or a day (``span`` 24, from the day's first hour):
  ingestion merges each request's sampled values into both, and a query reads the days wholly inside its
  window and the hours at its edges, so 30 days of 100 columns merge about 3,000 sketches, not 72,000.
- ``drift_columns``: the columns (and their dtypes) each hour's inputs declared in ``_meta``, sampled or not,
  so a rotating column window does not make a column look missing, and a dtype change is seen.
- ``drift_schemas``: wide schemas (more than 100 columns) by the hash spans carry in ``_meta.schema``.
- ``drift_references``: named reference profiles per model and version (``aither.log_reference``).
- ``drift_profile_reports``: the profiles a profile-only SDK sent (``aither.profile`` points on ``/v1/metrics``),
  by a digest of (instance, model, version, environment, role, column, kind, start, end): a retried body's
  profiles are merged once (``v0015_profiles``). Keys older than :data:`REPORT_KEYS_KEPT_NS` are let go.

Models are named by (name, version, environment) strings, not by the core tables' ids: these tables depend on
nothing else in the schema (``v0010_drift``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypedDict

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
)

from aither.profile import Profile
from aither_server.store.model_keyed import model_filter, model_hour, names, newest_for_version

if TYPE_CHECKING:
    from aither_server.ingest.metrics import ProfileReport

__all__ = [
    "DriftStore",
    "ModelKey",
    "ReferenceSummary",
    "SketchRow",
    "StoredReference",
    "drift_columns",
    "drift_profile_reports",
    "drift_references",
    "drift_schemas",
    "drift_sketches",
    "metadata",
    "profiles_of_rows",
    "WideSchema",
]

metadata = MetaData()

drift_sketches = Table(
    "drift_sketches",
    metadata,
    *names("model", "version", "environment"),
    Column("role", String(16), nullable=False),
    Column("feature", String(1024), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("hour", BigInteger, nullable=False),
    Column("span", Integer, nullable=False),
    Column("dtype", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("nulls", BigInteger, nullable=False),
    Column("min", Float, nullable=True),
    Column("max", Float, nullable=True),
    Column("sketch", LargeBinary, nullable=False),
    PrimaryKeyConstraint("model", "version", "environment", "span", "hour", "role", "feature", "kind"),
)

drift_columns = Table(
    "drift_columns",
    metadata,
    *model_hour(),
    Column("feature", String(1024), nullable=False),
    Column("dtype", String(64), nullable=False),
    PrimaryKeyConstraint("model", "version", "environment", "hour", "feature", "dtype"),
)

drift_schemas = Table(
    "drift_schemas",
    metadata,
    Column("hash", String(32), primary_key=True),
    Column("body", Text, nullable=False),
)

drift_references = Table(
    "drift_references",
    metadata,
    *names("model", "version", "name", "environment"),
    Column("created_ns", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("model", "version", "name"),
)

drift_profile_reports = Table(
    "drift_profile_reports",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("end_ns", BigInteger, nullable=False, index=True),
)

#: How long a sent profile's key is kept against retries: far longer than any SDK retries a body.
REPORT_KEYS_KEPT_NS = 7 * 24 * 3_600_000_000_000
_HOUR_NS = 3_600_000_000_000

#: (model name, version, environment); '' for no version / environment.
ModelKey = tuple[str, str, str]
#: Hours in a day bucket.
DAY_HOURS = 24
#: (model key, hour, role, column) -> new profiles of that hour (one per kind).
HourProfiles = dict[tuple[ModelKey, int, str, str], list[Profile]]


class WideSchema(TypedDict):
    """A wide input's columns and their dtypes, stored once by the hash its spans carry."""

    columns: list[str]
    dtypes: dict[str, str]


class ReferenceSummary(TypedDict):
    """One stored reference as listed (``DriftStore.references``)."""

    name: str
    version: str
    environment: str
    created_ns: int
    rows: int


@dataclass(frozen=True, slots=True)
class SketchRow:
    """One stored profile of a window (``DriftStore.hour_rows``)."""

    role: str
    feature: str
    kind: str
    hour: int
    dtype: str
    count: int
    nulls: int
    min: float | None
    max: float | None
    sketch: bytes


class StoredReference:
    """A reference as stored: its name and version, when it was sent, and its profiles by role and column."""

    def __init__(self, name: str, version: str, created_ns: int, rows: int, body: Mapping[str, object]) -> None:
        self.name = name
        self.version = version
        self.created_ns = created_ns
        self.rows = rows
        features = body.get("features") or {}
        predictions = body.get("predictions")
        if not isinstance(features, dict) or not (predictions is None or isinstance(predictions, dict)):
            raise ValueError(f"the stored reference {name!r} is not a reference body")
        self.features = {str(c): Profile.from_json(p) for c, p in features.items()}
        self.prediction = None if not predictions else Profile.from_json(predictions)


class DriftStore:
    """Reads and writes drift's tables through one SQLAlchemy engine (SQLite here; PostgreSQL alike)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- ingestion -------------------------------------------------------------------------------------------

    def add_hours(
        self,
        profiles: HourProfiles,
        columns: dict[tuple[ModelKey, int], dict[str, str]],
        schemas: Mapping[str, WideSchema],
    ) -> None:
        """Merge new per-hour profiles into the stored hours and days, record declared columns and wide schemas;
        one transaction. Rows are replaced (delete, insert), the one upsert both engines spell alike."""
        with self.engine.begin() as conn:
            self._add_hours(conn, profiles, columns, schemas)

    def add_reported(self, reports: Sequence[ProfileReport]) -> int:
        """Merge profiles an SDK sent (``ingest.metrics.ProfileReport``) into their hours, as :meth:`add_hours`
        merges the server's own, each exactly once: a report whose key is stored (a retried body) is skipped,
        in the transaction that merges the others. Returns how many were new."""
        keys = {_report_key(r): r for r in reports}
        if not keys:
            return 0
        t = drift_profile_reports
        with self.engine.begin() as conn:
            seen = {k for (k,) in conn.execute(select(t.c.key).where(t.c.key.in_(sorted(keys))))}
            fresh = [(k, r) for k, r in keys.items() if k not in seen]
            if not fresh:
                return 0
            conn.execute(insert(t), [{"key": k, "end_ns": r.end_ns} for k, r in fresh])
            profiles: HourProfiles = {}
            columns: dict[tuple[ModelKey, int], dict[str, str]] = {}
            for _, r in fresh:
                model = (r.model, r.version, r.environment)
                hour = (r.end_ns - 1) // _HOUR_NS
                profiles.setdefault((model, hour, r.role, r.column), []).append(r.profile)
                if r.role == "feature":
                    columns.setdefault((model, hour), {})[r.column] = r.profile.dtype
            self._add_hours(conn, profiles, columns, {})
            newest = max(r.end_ns for _, r in fresh)
            conn.execute(delete(t).where(t.c.end_ns < newest - REPORT_KEYS_KEPT_NS))
        return len(fresh)

    def _add_hours(
        self,
        conn: Connection,
        profiles: HourProfiles,
        columns: dict[tuple[ModelKey, int], dict[str, str]],
        schemas: Mapping[str, WideSchema],
    ) -> None:
        targets: dict[tuple[ModelKey, int, int], dict[tuple[str, str], list[Profile]]] = {}
        for (model, hour, role, feature), new in profiles.items():
            for span, start in ((1, hour), (DAY_HOURS, hour - hour % DAY_HOURS)):
                targets.setdefault((model, start, span), {}).setdefault((role, feature), []).extend(new)
        for (model, start, span), found in sorted(targets.items()):
            self._merge_bucket(conn, model, start, span, found)
        for ((name, version, environment), hour), declared in columns.items():
            known = {
                (r.feature, r.dtype)
                for r in conn.execute(
                    select(drift_columns.c.feature, drift_columns.c.dtype).where(
                        drift_columns.c.model == name,
                        drift_columns.c.version == version,
                        drift_columns.c.environment == environment,
                        drift_columns.c.hour == hour,
                    )
                )
            }
            fresh = [
                {
                    "model": name,
                    "version": version,
                    "environment": environment,
                    "hour": hour,
                    "feature": f,
                    "dtype": d,
                }
                for f, d in declared.items()
                if (f, d) not in known
            ]
            if fresh:
                conn.execute(insert(drift_columns), fresh)
        for digest, body in schemas.items():
            if conn.execute(select(drift_schemas.c.hash).where(drift_schemas.c.hash == digest)).first() is None:
                conn.execute(insert(drift_schemas), [{"hash": digest, "body": json.dumps(body)}])

    @staticmethod
    def _merge_bucket(
        conn: Connection, model: ModelKey, start: int, span: int, found: dict[tuple[str, str], list[Profile]]
    ) -> None:
        from aither.profile import merge

        name, version, environment = model
        t = drift_sketches
        where = [t.c.model == name, t.c.version == version, t.c.environment == environment]
        where += [t.c.span == span, t.c.hour == start, t.c.feature.in_(sorted({feature for _, feature in found}))]
        stored: dict[tuple[str, str, str], Profile] = {
            (r.role, r.feature, r.kind): _profile_of(r)
            for r in _sketch_rows(conn, select(*_sketch_columns()).where(*where))
        }
        for (role, feature), new in found.items():
            for profile in new:
                key = (role, feature, profile.kind)
                old = stored.get(key)
                merged = profile if old is None else merge([old, profile])
                assert merged is not None
                stored[key] = merged
        conn.execute(delete(t).where(*where))
        conn.execute(
            insert(t),
            [
                _row(name, version, environment, role, feature, start, span, p)
                for (role, feature, _), p in stored.items()
            ],
        )

    def schema(self, digest: str) -> WideSchema | None:
        with self.engine.connect() as conn:
            body = conn.execute(select(drift_schemas.c.body).where(drift_schemas.c.hash == digest)).scalar()
        if body is None:
            return None
        found = json.loads(body)
        dtypes = found.get("dtypes") if isinstance(found, dict) else None
        if not isinstance(dtypes, dict):
            return None
        columns = found.get("columns")
        names = [str(c) for c in columns] if isinstance(columns, list) else list(dtypes)
        return {"columns": names, "dtypes": {str(k): str(v) for k, v in dtypes.items()}}

    # -- references ------------------------------------------------------------------------------------------

    def put_reference(self, model: str, version: str, environment: str, name: str, rows: int, body: str) -> int:
        """Store (or replace) the reference ``name`` of a model version; returns its creation time."""
        created = time.time_ns()
        with self.engine.begin() as conn:
            conn.execute(
                delete(drift_references).where(
                    drift_references.c.model == model,
                    drift_references.c.version == version,
                    drift_references.c.name == name,
                )
            )
            conn.execute(
                insert(drift_references),
                [
                    {
                        "model": model,
                        "version": version,
                        "name": name,
                        "environment": environment,
                        "created_ns": created,
                        "rows": rows,
                        "body": body,
                    }
                ],
            )
        return created

    def reference(self, model: str, version: str | None, name: str | None) -> StoredReference | None:
        """The reference ``name`` (else the latest one) of a model, of ``version`` when given: a reference
        logged without a version serves every version that has none of its own."""
        with self.engine.connect() as conn:
            row = conn.execute(newest_for_version(drift_references, model, version, name)).first()
        if row is None:
            return None
        return StoredReference(row.name, row.version, row.created_ns, row.rows, json.loads(row.body))

    def references(self, model: str) -> list[ReferenceSummary]:
        query = (
            select(
                drift_references.c.name,
                drift_references.c.version,
                drift_references.c.environment,
                drift_references.c.created_ns,
                drift_references.c.rows,
            )
            .where(drift_references.c.model == model)
            .order_by(drift_references.c.created_ns.desc())
        )
        with self.engine.connect() as conn:
            return [
                {"name": n, "version": v, "environment": e, "created_ns": c, "rows": r}
                for n, v, e, c, r in conn.execute(query)
            ]

    # -- queries ---------------------------------------------------------------------------------------------

    def hour_rows(
        self,
        model: str,
        version: str | None,
        environment: str | None,
        start_hour: int | None,
        end_hour: int | None,
        features: Sequence[str] | None = None,
        *,
        hourly: bool = False,
    ) -> list[SketchRow]:
        """The stored profiles of a window: rows of (role, feature, kind, hour, dtype, count, nulls, min, max,
        sketch). The days wholly inside the window come from their day rows and the rest from hour rows,
        unless ``hourly`` (every row is then one hour, for series)."""
        t = drift_sketches
        base = model_filter(t, model, version, environment)
        if features is not None:
            base.append(t.c.feature.in_(list(features)))
        columns = _sketch_columns()
        hours = [*base, t.c.span == 1]
        if start_hour is not None:
            hours.append(t.c.hour >= start_hour)
        if end_hour is not None:
            hours.append(t.c.hour < end_hour)
        queries = []
        if hourly:
            queries.append(select(*columns).where(and_(*hours)))
        else:
            # Whole days: [first_day, last_day) in hours, each day's first hour a multiple of 24.
            first_day = None if start_hour is None else -(-start_hour // DAY_HOURS) * DAY_HOURS
            last_day = None if end_hour is None else end_hour // DAY_HOURS * DAY_HOURS
            days = [*base, t.c.span == DAY_HOURS]
            if first_day is not None:
                days.append(t.c.hour >= first_day)
                hours_outside = [t.c.hour < first_day]
            else:
                hours_outside = []
            if last_day is not None:
                days.append(t.c.hour < last_day)
                hours_outside.append(t.c.hour >= last_day)
            queries.append(select(*columns).where(and_(*days)))
            if hours_outside:
                queries.append(select(*columns).where(and_(*hours), or_(*hours_outside)))
        with self.engine.connect() as conn:
            return [row for query in queries for row in _sketch_rows(conn, query)]

    def declared_columns(
        self, model: str, version: str | None, environment: str | None, start_hour: int | None, end_hour: int | None
    ) -> dict[str, set[str]]:
        """Columns the window's inputs declared, with every dtype each was declared with."""
        t = drift_columns
        clauses = model_filter(t, model, version, environment)
        if start_hour is not None:
            clauses.append(t.c.hour >= start_hour)
        if end_hour is not None:
            clauses.append(t.c.hour < end_hour)
        out: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for feature, dtype in conn.execute(select(t.c.feature, t.c.dtype).where(and_(*clauses)).distinct()):
                out.setdefault(feature, set()).add(dtype)
        return out

    def has_model(self, model: str) -> bool:
        with self.engine.connect() as conn:
            for table in (drift_sketches, drift_references):
                if conn.execute(select(table.c.model).where(table.c.model == model).limit(1)).first() is not None:
                    return True
        return False


def _sketch_columns() -> tuple[ColumnElement[object], ...]:
    """``drift_sketches``' columns in :class:`SketchRow`'s order."""
    return tuple(drift_sketches.c[f.name] for f in fields(SketchRow))


def _sketch_rows(conn: Connection, query: Executable) -> list[SketchRow]:
    return [SketchRow(*row) for row in conn.execute(query)]


def _report_key(report: ProfileReport) -> str:
    """A sent profile's identity: what a retry of its body repeats exactly (JSON, so no two tuples collide)."""
    parts = [report.instance, report.model, report.version, report.environment, report.role, report.column]
    text = json.dumps([*parts, report.profile.kind, report.start_ns, report.end_ns], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _profile_of(row: SketchRow) -> Profile:
    return Profile(row.kind, row.dtype, row.count, row.nulls, row.min, row.max, row.sketch)


def _row(
    name: str, version: str, environment: str, role: str, feature: str, hour: int, span: int, p: Profile
) -> dict[str, object]:
    return {
        "span": span,
        "model": name,
        "version": version,
        "environment": environment,
        "role": role,
        "feature": feature,
        "kind": p.kind,
        "hour": hour,
        "dtype": p.dtype[:64],
        "count": p.count,
        "nulls": p.nulls,
        "min": p.minimum,
        "max": p.maximum,
        "sketch": p.sketch,
    }


def profiles_of_rows(rows: Iterable[SketchRow]) -> list[Profile]:
    return [_profile_of(r) for r in rows]
