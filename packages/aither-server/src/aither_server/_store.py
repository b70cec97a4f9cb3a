"""SQLite storage: connections, ingestion, API keys, the organisation and usage counters.

One writer connection behind a lock (SQLite allows one writer at a time anyway) and one read-only connection
per thread, all in WAL mode so readers never wait for the writer. Ingestion uses group commit: requests that
arrive while a transaction is being written queue up, and the next writer stores all of them in one
transaction, each inside its own savepoint, so either all of a request's spans are stored or none, and every
request returns only after the transaction holding its spans has committed.

Reads for the query API live in ``_query``; this module owns the schema (through ``_migrations``) and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import getpass
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import _auth
from ._migrations import migrate
from ._records import AggregatePoint, LabelSpan, PredictionSpan, label_rows, prediction_rows, value_key
from ._rollup import HOUR_NS, MINUTE_NS, aggregate_bucket, latency_bucket, quality_key

__all__ = [
    "IngestResult",
    "KeyRecord",
    "LastAdminKey",
    "OrgRecord",
    "Store",
    "UsageRecord",
    "month_period",
]

# Parameters per statement stay well under SQLite's limit (32766 since 3.32, 999 before).
_CHUNK = 500
#: How often the checkpoint thread copies the WAL back into the database.
_CHECKPOINT_INTERVAL_S = 0.5
#: The writer checkpoints by itself only when the WAL reaches this many pages (4 KiB each): a backstop.
_BACKSTOP_CHECKPOINT_PAGES = 65536
#: ``last_used_at`` is refreshed at most this often per key, so reads do not turn into writes.
_TOUCH_INTERVAL_NS = 60 * 1_000_000_000


@dataclasses.dataclass(frozen=True)
class IngestResult:
    predictions: int
    """New prediction spans stored (a retried span counts zero)."""
    prediction_rows: int
    labels: int
    """New label spans stored."""
    label_rows: int


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_ns: int
    last_used_ns: int | None
    revoked_ns: int | None


@dataclasses.dataclass(frozen=True)
class OrgRecord:
    id: str
    name: str
    plan: str
    created_ns: int
    user_name: str


@dataclasses.dataclass(frozen=True)
class UsageRecord:
    period_start: datetime.datetime
    period_end: datetime.datetime
    api_calls: int
    predictions: int
    labels: int
    rejected_spans: int = 0
    """Spans refused for a wrong or missing ``ml.*`` value (counted per request received)."""
    ignored_spans: int = 0
    """Spans with no ``ml.*`` attribute: another library's spans, not stored."""


class LastAdminKey(Exception):
    """Revoking this key would leave no admin key, and nobody could manage keys any more."""


def month_period(now_ns: int) -> tuple[datetime.datetime, datetime.datetime]:
    """The calendar month (UTC) holding ``now_ns``: the billing period."""
    now = datetime.datetime.fromtimestamp(now_ns / 1e9, tz=datetime.timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _period_key(now_ns: int) -> str:
    return month_period(now_ns)[0].strftime("%Y-%m")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _local_user() -> str:
    try:
        return getpass.getuser() or "local"
    except Exception:  # getuser raises when no login name can be found (containers without /etc/passwd)
        return "local"


def _key_record(row: sqlite3.Row | tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], tuple(row[3].split(",")), row[4], row[5], row[6])


_KEY_COLUMNS = "id, name, prefix, scopes, created_ns, last_used_ns, revoked_ns"

_INSERT_PREDICTION = (
    "INSERT INTO predictions (id, trace_key, trace_id, span_id, model_id, name, method, framework, start_ns,"
    " latency_ns, status, error, n_rows, batch_size, features, prediction, service_name, received_ns,"
    " instance_id, sample_rate, link_trace_id, link_span_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ROW = (
    "INSERT INTO prediction_rows (pred_id, row, model_id, start_ns, kind, pred_key, pred_num, score, proba,"
    " weight, label_key, label_num, label_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Only a label at least as recent as the stored one replaces it, so out-of-order retries do not roll back.
# A label knows its prediction's rows (and model) once that is stored, so labels that cannot join are found
# through the labels_unjoined partial index (GET /api/v1/labels/unjoined). Set at insertion when the
# prediction is there already (the common case), so the label never enters that index.
_UPSERT_LABEL = (
    "INSERT INTO labels (trace_id, row, label, label_key, label_num, label_kind, time_ns, received_ns, pred_rows,"
    " model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (trace_id, row) DO UPDATE SET label = excluded.label, label_key = excluded.label_key,"
    " label_num = excluded.label_num, label_kind = excluded.label_kind, time_ns = excluded.time_ns,"
    " received_ns = excluded.received_ns"
    " WHERE excluded.time_ns >= labels.time_ns"
)
_LABELS_JOINED = "UPDATE labels SET pred_rows = ?, model_id = ? WHERE trace_id = ? AND pred_rows IS NULL"
_VOLUME = (
    "INSERT INTO volume_minutes (model_id, minute, calls, errors, rows) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (model_id, minute) DO UPDATE SET calls = calls + excluded.calls,"
    " errors = errors + excluded.errors, rows = rows + excluded.rows"
)
_LATENCY = (
    "INSERT INTO latency_hours (model_id, hour, bucket, calls) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (model_id, hour, bucket) DO UPDATE SET calls = calls + excluded.calls"
)
_QUALITY = (
    "INSERT INTO quality_hours (model_id, hour, kind, label_kind, pred_key, label_key, scored, rows, n_num,"
    " sum_abs, sum_sq, w_rows, w_num, w_abs, w_sq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (model_id, hour, kind, label_kind, pred_key, label_key, scored) DO UPDATE SET"
    " rows = rows + excluded.rows, n_num = n_num + excluded.n_num, sum_abs = sum_abs + excluded.sum_abs,"
    " sum_sq = sum_sq + excluded.sum_sq, w_rows = w_rows + excluded.w_rows, w_num = w_num + excluded.w_num,"
    " w_abs = w_abs + excluded.w_abs, w_sq = w_sq + excluded.w_sq"
)
_INSTANCE_MODELS = (
    "INSERT INTO instance_models (model_id, instance_id, calls, errors, rows) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (model_id, instance_id) DO UPDATE SET calls = calls + excluded.calls,"
    " errors = errors + excluded.errors, rows = rows + excluded.rows"
)
_INSTANCE_MINUTES = (
    "INSERT INTO instance_minutes (model_id, minute, instance_id, calls, errors, rows) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (model_id, minute, instance_id) DO UPDATE SET calls = calls + excluded.calls,"
    " errors = errors + excluded.errors, rows = rows + excluded.rows"
)
_INSTANCE_LATENCY = (
    "INSERT INTO instance_latency_hours (model_id, hour, instance_id, bucket, calls) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (model_id, hour, instance_id, bucket) DO UPDATE SET calls = calls + excluded.calls"
)
_INSERT_POINT = (
    "INSERT INTO aggregate_points (instance_id, metric, model_id, reason, start_ns, end_ns, value, buckets,"
    " received_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (instance_id, metric, model_id, reason, start_ns, end_ns) DO NOTHING"
)
_AGGREGATE_MINUTES = (
    "INSERT INTO aggregate_minutes (model_id, minute, metric, reason, value) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (model_id, minute, metric, reason) DO UPDATE SET value = value + excluded.value"
)
_AGGREGATE_LATENCY = (
    "INSERT INTO aggregate_latency_hours (model_id, hour, bucket, calls) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (model_id, hour, bucket) DO UPDATE SET calls = calls + excluded.calls"
)
#: The models table's running totals of each aggregate metric (the models list reads them).
_MODEL_TOTALS = {"calls": "aggregate_calls", "rows": "aggregate_rows", "errors": "aggregate_errors"}
_QUALITY_EMPTY = (
    "DELETE FROM quality_hours WHERE model_id = ? AND hour = ? AND kind = ? AND label_kind = ? AND pred_key = ?"
    " AND label_key = ? AND scored = ? AND rows = 0"
)

_NO_LINK = (None, None)

#: The (prediction, row) pairs a request of labels touches, joined in one statement (``_apply_labels``).
#: Temporary: private to the writer's connection, in memory (temp_store), never in the database file.
_AFFECTED_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS affected_rows (pred_id INTEGER NOT NULL, row INTEGER NOT NULL,"
    " trace_id BLOB NOT NULL, PRIMARY KEY (pred_id, row)) WITHOUT ROWID"
)

_QualityDeltas = dict[tuple[int, int, int, int, str, str, int], list[Any]]


def trace_key(trace_id: bytes) -> int:
    """The indexed part of a trace id: its first 8 bytes as a signed 64-bit integer."""
    return int.from_bytes(trace_id[:8], "big", signed=True)


def _add_quality(
    deltas: _QualityDeltas,
    sign: int,
    model_id: int,
    start_ns: int,
    pred: tuple[Any, Any, Any, Any],
    label: tuple[Any, Any, Any],
    weight: float | None,
) -> None:
    """Add (``sign`` 1) or remove (-1) one labelled row's contribution to ``quality_hours``.

    ``pred`` is (kind, pred_key, pred_num, score); ``label`` is (label_key, label_num, label_kind); ``weight``
    the calls its span stands for (``None``: 1).
    """
    kind, pred_key, pred_num, score = pred
    label_key, label_num, label_kind = label
    key = (model_id, start_ns // HOUR_NS, *quality_key(kind, label_kind, pred_key, label_key, score))
    cell = deltas.get(key)
    if cell is None:
        cell = deltas[key] = [0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    w = sign * (1.0 if weight is None else weight)
    cell[0] += sign
    cell[4] += w
    if pred_num is not None and label_num is not None:
        diff = pred_num - label_num
        cell[1] += sign
        cell[2] += sign * abs(diff)
        cell[3] += sign * diff * diff
        cell[5] += w
        cell[6] += w * abs(diff)
        cell[7] += w * diff * diff


def _count_call(counts: dict[Any, list[int]], key: Any, status: int, n_rows: int) -> None:
    """One more call (and its error status and rows) in a rollup being built."""
    found = counts.get(key)
    if found is None:
        counts[key] = [1, status, n_rows]
    else:
        found[0] += 1
        found[1] += status
        found[2] += n_rows


@dataclasses.dataclass
class _Job:
    """One ingestion request waiting for (or stored by) a group commit."""

    predictions: Sequence[PredictionSpan]
    labels: Sequence[LabelSpan]
    count_call: bool
    rejected_spans: int
    ignored_spans: int
    done: bool = False
    result: IngestResult | None = None
    error: BaseException | None = None


class Store:
    """The server's database. Thread-safe; one instance per process and file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._model_ids: dict[tuple[str, str, str], int] = {}
        self._instance_ids: dict[str, int] = {}
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._touched: dict[str, int] = {}
        # API calls and key uses counted in memory, written by the next write transaction (or the flush on
        # the checkpoint thread), so a read never waits for the writer to count itself.
        self._counts_lock = threading.Lock()
        self._unwritten_calls: dict[str, int] = {}
        self._unwritten_touches: dict[str, int] = {}
        # Calls taken by the open transaction: still counted by usage() until it commits. The epoch is odd
        # while a commit moves them into the database, so usage() never counts them twice or not at all.
        self._writing_calls: dict[str, int] = {}
        self._counts_epoch = 0
        self._closed = False
        # The schema first, on its own connection (Alembic's), before this store opens any.
        migrate(self.path)
        self._writer = self._connect()
        # WAL lets readers run beside the writer; it is a property of the file, so set once here.
        self._writer.execute("PRAGMA journal_mode=WAL")
        # Checkpoints (copying the WAL back into the database, with an fsync) run on their own thread, off
        # the commit path; the writer's own automatic checkpoint is only a backstop if that thread falls behind.
        self._writer.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_CHECKPOINT_PAGES}")
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="aither-checkpoint", daemon=True)
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'org_id'").fetchone() is None:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("org_id", "org_" + secrets.token_hex(6)),
                        ("org_name", "local"),
                        ("plan", "local"),
                        ("created_ns", str(time.time_ns())),
                    ],
                )
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            while not self._stop.wait(_CHECKPOINT_INTERVAL_S):
                self._flush_counts(wait=False)
                # PASSIVE never blocks the writer or readers; it copies what it can.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # the file went away under a closing store; the writer's backstop remains
            pass
        finally:
            conn.close()

    def _connect(self, readonly: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        # NORMAL is durable across application crashes in WAL mode; a power loss may drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        return conn

    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = self._connect(readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back entirely if the block raises."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        self._flush_counts(wait=True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        with self._write_lock:
            self._writer.close()

    # -- organisation, usage -------------------------------------------------------------------------------

    def org(self) -> OrgRecord:
        meta = dict(self.reader().execute("SELECT key, value FROM meta").fetchall())
        return OrgRecord(meta["org_id"], meta["org_name"], meta["plan"], int(meta["created_ns"]), _local_user())

    def count_api_call(self) -> None:
        """Count one API call: in memory now, in the database with the next write (within a second)."""
        period = _period_key(time.time_ns())
        with self._counts_lock:
            self._unwritten_calls[period] = self._unwritten_calls.get(period, 0) + 1

    def _write_counts(self, conn: sqlite3.Connection) -> None:
        """Write the counted API calls and key uses; called inside a write transaction."""
        with self._counts_lock:
            calls, self._unwritten_calls = self._unwritten_calls, {}
            touches, self._unwritten_touches = self._unwritten_touches, {}
            for period, n in calls.items():
                self._writing_calls[period] = self._writing_calls.get(period, 0) + n
        try:
            for period, n in calls.items():
                self._add_usage_row(conn, period, n, 0, 0, 0, 0)
            conn.executemany(
                "UPDATE api_keys SET last_used_ns = max(coalesce(last_used_ns, 0), ?) WHERE id = ?",
                [(ns, key_id) for key_id, ns in touches.items()],
            )
        except BaseException:
            self._counts_rolled_back()
            with self._counts_lock:
                for key_id, ns in touches.items():
                    self._unwritten_touches.setdefault(key_id, ns)
            raise

    def _counts_rolled_back(self) -> None:
        """The transaction that took the counted calls did not commit: they wait for the next write."""
        with self._counts_lock:
            for period, n in self._writing_calls.items():
                self._unwritten_calls[period] = self._unwritten_calls.get(period, 0) + n
            self._writing_calls.clear()

    def _commit_counts(self, conn: sqlite3.Connection) -> None:
        """COMMIT the transaction holding the counted calls, which then stop being counted from memory."""
        self._counts_epoch += 1
        try:
            conn.execute("COMMIT")
            with self._counts_lock:
                self._writing_calls.clear()
        finally:
            self._counts_epoch += 1

    def _flush_counts(self, *, wait: bool) -> None:
        """Write the counts in their own transaction; without ``wait``, only when the writer is free."""
        if not (self._unwritten_calls or self._unwritten_touches):
            return
        if not self._write_lock.acquire(blocking=wait):
            return
        try:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write_counts(conn)
                self._commit_counts(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._counts_rolled_back()
                raise
        except sqlite3.Error:  # a closing or broken database: the counts wait for the next write
            pass
        finally:
            self._write_lock.release()

    @staticmethod
    def _add_usage(
        conn: sqlite3.Connection,
        now_ns: int,
        calls: int,
        predictions: int,
        labels: int,
        rejected_spans: int = 0,
        ignored_spans: int = 0,
    ) -> None:
        Store._add_usage_row(conn, _period_key(now_ns), calls, predictions, labels, rejected_spans, ignored_spans)

    @staticmethod
    def _add_usage_row(
        conn: sqlite3.Connection,
        period: str,
        calls: int,
        predictions: int,
        labels: int,
        rejected_spans: int,
        ignored_spans: int,
    ) -> None:
        conn.execute(
            "INSERT INTO usage (period, api_calls, predictions, labels, rejected_spans, ignored_spans)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (period) DO UPDATE SET api_calls = api_calls + excluded.api_calls,"
            " predictions = predictions + excluded.predictions, labels = labels + excluded.labels,"
            " rejected_spans = rejected_spans + excluded.rejected_spans,"
            " ignored_spans = ignored_spans + excluded.ignored_spans",
            (period, calls, predictions, labels, rejected_spans, ignored_spans),
        )

    def usage(self, now_ns: int | None = None) -> UsageRecord:
        now_ns = time.time_ns() if now_ns is None else now_ns
        start, end = month_period(now_ns)
        period = _period_key(now_ns)
        while True:
            epoch = self._counts_epoch
            row = (
                self.reader()
                .execute(
                    "SELECT api_calls, predictions, labels, rejected_spans, ignored_spans FROM usage WHERE period = ?",
                    (period,),
                )
                .fetchone()
            )
            with self._counts_lock:  # calls counted but not committed yet: reads never wait to count them
                unwritten = self._unwritten_calls.get(period, 0) + self._writing_calls.get(period, 0)
            if epoch % 2 == 0 and self._counts_epoch == epoch:
                break
            time.sleep(0.001)  # a COMMIT moved calls into the database meanwhile: read again
        calls, preds, labels, rejected, ignored = row if row is not None else (0, 0, 0, 0, 0)
        return UsageRecord(start, end, calls + unwritten, preds, labels, rejected, ignored)

    # -- API keys ------------------------------------------------------------------------------------------

    def bootstrap(self, bootstrap_key: str | None = None) -> str | None:
        """Make sure an admin key exists. Returns a newly generated key (to print once), else ``None``.

        ``bootstrap_key`` (``AITHER_BOOTSTRAP_KEY``) is added as an admin key unless its hash is already
        stored; a revoked bootstrap key stays revoked.
        """
        if bootstrap_key is not None and not _auth.is_valid_key(bootstrap_key):
            raise ValueError("AITHER_BOOTSTRAP_KEY must be 'aith_' followed by 8 to 200 of [A-Za-z0-9_-]")
        with self.write() as conn:
            if bootstrap_key is not None:
                exists = conn.execute(
                    "SELECT 1 FROM api_keys WHERE hash = ?", (_auth.hash_key(bootstrap_key),)
                ).fetchone()
                if exists is None:
                    self._insert_key(conn, "bootstrap", ("admin",), bootstrap_key)
                return None
            if conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]:
                return None
            secret = _auth.generate_key()
            self._insert_key(conn, "admin", ("admin",), secret)
            return secret

    @staticmethod
    def _insert_key(conn: sqlite3.Connection, name: str, scopes: Sequence[str], secret: str) -> KeyRecord:
        record = KeyRecord(
            _auth.generate_key_id(), name, _auth.key_prefix(secret), tuple(scopes), time.time_ns(), None, None
        )
        conn.execute(
            "INSERT INTO api_keys (id, name, prefix, hash, scopes, created_ns) VALUES (?, ?, ?, ?, ?, ?)",
            (record.id, name, record.prefix, _auth.hash_key(secret), ",".join(scopes), record.created_ns),
        )
        return record

    def create_key(self, name: str, scopes: Sequence[str]) -> tuple[KeyRecord, str]:
        """A new key; its secret is returned here and never stored."""
        ordered = tuple(s for s in _auth.SCOPES if s in scopes)
        secret = _auth.generate_key()
        with self.write() as conn:
            return self._insert_key(conn, name, ordered, secret), secret

    def kept_key(self, name: str, scopes: Sequence[str]) -> tuple[str, bool]:
        """The secret of the key ``name`` this database keeps for a local tool (``aither demo``), and whether it
        was made just now. Made once and reused; made anew (and the earlier ones of that name revoked, so none
        pile up) when the kept one was revoked. The secret is kept in ``meta``, readable by anyone who can read
        the database file, who can read all its data anyway; other keys stay hashes only."""
        ordered = tuple(s for s in _auth.SCOPES if s in scopes)
        slot = f"kept_key:{name}"
        with self.write() as conn:
            found = conn.execute("SELECT value FROM meta WHERE key = ?", (slot,)).fetchone()
            if found is not None:
                live = conn.execute(
                    "SELECT 1 FROM api_keys WHERE hash = ? AND revoked_ns IS NULL", (_auth.hash_key(found[0]),)
                ).fetchone()
                if live is not None:
                    return str(found[0]), False
            conn.execute(
                "UPDATE api_keys SET revoked_ns = ? WHERE name = ? AND revoked_ns IS NULL AND scopes = ?",
                (time.time_ns(), name, ",".join(ordered)),
            )
            secret = _auth.generate_key()
            self._insert_key(conn, name, ordered, secret)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (slot, secret),
            )
            return secret, True

    def list_keys(self) -> list[KeyRecord]:
        rows = self.reader().execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_ns, id").fetchall()
        return [_key_record(r) for r in rows]

    def revoke_key(self, key_id: str) -> KeyRecord | None:
        """Revoke a key at once; ``None`` if there is no such key. Revoking twice is harmless."""
        with self.write() as conn:
            row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                return None
            record = _key_record(row)
            if record.revoked_ns is not None:
                return record
            if "admin" in record.scopes:
                admins = conn.execute(
                    "SELECT count(*) FROM api_keys WHERE revoked_ns IS NULL AND ',' || scopes || ',' LIKE '%,admin,%'"
                ).fetchone()[0]
                if admins <= 1:
                    raise LastAdminKey("this is the last admin key; create another admin key before revoking it")
            now = time.time_ns()
            conn.execute("UPDATE api_keys SET revoked_ns = ? WHERE id = ?", (now, key_id))
            self._touched.pop(key_id, None)
            return dataclasses.replace(record, revoked_ns=now)

    def authenticate(self, secret: str) -> _auth.Principal | None:
        """The principal behind a key, or ``None`` for an unknown or revoked key.

        No cache: a revoked key is refused on the very next request, even by another server on the same file.
        """
        if not secret.startswith(_auth.KEY_PREFIX) or len(secret) > 256:
            return None
        row = (
            self.reader()
            .execute(
                "SELECT id, name, scopes, revoked_ns, last_used_ns FROM api_keys WHERE hash = ?",
                (_auth.hash_key(secret),),
            )
            .fetchone()
        )
        if row is None or row[3] is not None:
            return None
        key_id = row[0]
        now = time.time_ns()
        last = self._touched.get(key_id, row[4] or 0)
        if now - last >= _TOUCH_INTERVAL_NS:
            self._touched[key_id] = now
            with self._counts_lock:  # written with the next write, like the API call counts
                self._unwritten_touches[key_id] = now
        return _auth.Principal(key_id, row[1], tuple(row[2].split(",")))

    # -- ingestion -----------------------------------------------------------------------------------------

    def ingest(
        self,
        predictions: Sequence[PredictionSpan],
        labels: Sequence[LabelSpan],
        *,
        count_call: bool = True,
        rejected_spans: int = 0,
        ignored_spans: int = 0,
    ) -> IngestResult:
        """Store one request's spans, all or none; spans already stored (a retry) are skipped.

        Returns once the transaction holding them has committed. Requests arriving while another transaction
        is written are stored together in the next one (group commit), each in its own savepoint.
        """
        job = _Job(predictions, labels, count_call, rejected_spans, ignored_spans)
        with self._pending_lock:
            self._pending.append(job)
        with self._write_lock:
            if not job.done:
                with self._pending_lock:
                    jobs, self._pending = self._pending, []
                self._store_jobs(jobs)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _store_jobs(self, jobs: list[_Job]) -> None:
        """Store queued requests in one transaction; called with the write lock held."""
        conn = self._writer
        new_models: dict[tuple[str, str, str], int] = {}
        new_instances: dict[str, int] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._write_counts(conn)
            for job in jobs:
                now = time.time_ns()
                job_models: dict[tuple[str, str, str], int] = {}
                job_instances: dict[str, int] = {}
                conn.execute("SAVEPOINT job")
                try:
                    preds, rows = self._ingest_predictions(conn, job.predictions, now, job_models, job_instances)
                    n_labels, n_label_rows = self._ingest_labels(conn, job.labels, now)
                    self._add_usage(
                        conn, now, int(job.count_call), rows, n_label_rows, job.rejected_spans, job.ignored_spans
                    )
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    job.error = exc
                    continue
                conn.execute("RELEASE job")
                job.result = IngestResult(preds, rows, n_labels, n_label_rows)
                new_models.update(job_models)
                new_instances.update(job_instances)
            self._commit_counts(conn)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._counts_rolled_back()
            for job in jobs:
                job.result = None
                job.error = job.error or exc
        else:
            # Only after COMMIT: a rolled-back transaction must not leave ids of models that do not exist.
            self._model_ids.update(new_models)
            self._instance_ids.update(new_instances)
        finally:
            for job in jobs:
                job.done = True

    @staticmethod
    def _existing(
        conn: sqlite3.Connection, table: str, keys: Sequence[tuple[bytes, bytes]]
    ) -> set[tuple[bytes, bytes]]:
        found: set[tuple[bytes, bytes]] = set()
        values: list[Any]
        if table == "predictions":
            column, values = "trace_key", list({trace_key(k[0]) for k in keys})
        else:
            column, values = "trace_id", list({k[0] for k in keys})
        for chunk in _chunks(values):
            marks = ",".join("?" * len(chunk))
            found.update(
                conn.execute(f"SELECT trace_id, span_id FROM {table} WHERE {column} IN ({marks})", chunk).fetchall()
            )
        return found

    def _model_id(
        self,
        conn: sqlite3.Connection,
        key: tuple[str, str, str],
        seen_ns: int,
        new: dict[tuple[str, str, str], int],
    ) -> int:
        cached = self._model_ids.get(key) or new.get(key)
        if cached is not None:
            return cached
        conn.execute(
            "INSERT INTO models (name, version, environment, first_seen_ns, last_seen_ns)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name, version, environment) DO NOTHING",
            (*key, seen_ns, seen_ns),
        )
        model_id: int = conn.execute(
            "SELECT id FROM models WHERE name = ? AND version = ? AND environment = ?", key
        ).fetchone()[0]
        new[key] = model_id
        return model_id

    def _instance_id(self, conn: sqlite3.Connection, instance: str, seen_ns: int, new: dict[str, int]) -> int:
        cached = self._instance_ids.get(instance) or new.get(instance)
        if cached is not None:
            return cached
        conn.execute(
            "INSERT INTO instances (instance, first_seen_ns) VALUES (?, ?) ON CONFLICT (instance) DO NOTHING",
            (instance, seen_ns),
        )
        instance_id: int = conn.execute("SELECT id FROM instances WHERE instance = ?", (instance,)).fetchone()[0]
        new[instance] = instance_id
        return instance_id

    def _ingest_predictions(
        self,
        conn: sqlite3.Connection,
        spans: Sequence[PredictionSpan],
        now: int,
        new_models: dict[tuple[str, str, str], int],
        new_instances: dict[str, int],
    ) -> tuple[int, int]:
        if not spans:
            return 0, 0
        unique = {(s.trace_id, s.span_id): s for s in spans}
        existing = self._existing(conn, "predictions", list(unique))
        fresh = [s for k, s in unique.items() if k not in existing] if existing else list(unique.values())
        if not fresh:
            return 0, 0
        # Labels that arrived before their prediction are copied onto its rows now.
        early: dict[tuple[bytes, int], tuple[Any, Any, Any]] = {}
        trace_ids = list({s.trace_id for s in fresh})
        for chunk in _chunks(trace_ids):
            marks = ",".join("?" * len(chunk))
            for trace_id, row, key, num, kind in conn.execute(
                f"SELECT trace_id, row, label_key, label_num, label_kind FROM labels WHERE trace_id IN ({marks})",
                chunk,
            ):
                early[(trace_id, row)] = (key, num, kind)
        early_traces = {trace_id for trace_id, _ in early}
        joined: list[tuple[int, int, bytes]] = []

        next_id: int = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM predictions").fetchone()[0]
        pred_params: list[tuple[Any, ...]] = []
        row_params: list[tuple[Any, ...]] = []
        per_model: dict[int, list[int]] = {}
        volume: dict[tuple[int, int], list[int]] = {}
        latency: dict[tuple[int, int, int], int] = {}
        # Per instance (0: none given): span counts, and latencies in the aggregate histogram's buckets.
        instance_totals: dict[Any, list[int]] = {}
        instance_minutes: dict[Any, list[int]] = {}
        instance_latency: dict[tuple[int, int, int, int], int] = {}
        sampled: set[int] = set()
        quality: _QualityDeltas = {}
        no_label = (None, None, None)
        total_rows = 0
        model_ids = self._model_ids
        from_bytes = int.from_bytes
        for span in fresh:
            model_key = (span.model, span.version, span.environment)
            model_id = model_ids.get(model_key) or self._model_id(conn, model_key, span.start_ns, new_models)
            instance = span.instance
            instance_id = (
                (self._instance_ids.get(instance) or self._instance_id(conn, instance, now, new_instances))
                if instance
                else None
            )
            sample_rate = span.sample_rate
            weight = None if sample_rate is None else 1.0 / sample_rate
            if weight is not None:
                sampled.add(model_id)
            n_rows, values = prediction_rows(span)
            total_rows += n_rows
            pred_id = next_id
            next_id += 1
            trace_id = span.trace_id
            start_ns = span.start_ns
            latency_ns = span.end_ns - start_ns
            error = span.error
            status = 0 if error is None else 1
            pred_params.append(
                (
                    pred_id,
                    from_bytes(trace_id[:8], "big", signed=True),  # trace_key()
                    trace_id,
                    span.span_id,
                    model_id,
                    span.name,
                    span.method,
                    span.framework,
                    start_ns,
                    latency_ns,
                    status,
                    error,
                    n_rows,
                    span.batch_size,
                    span.features,
                    span.prediction_json,
                    span.service_name,
                    now,
                    instance_id,
                    sample_rate,
                    *(span.link or _NO_LINK),
                )
            )
            if early:
                if trace_id in early_traces:
                    joined.append((n_rows, model_id, trace_id))
                for v in values:
                    label = early.get((trace_id, v.row), no_label)
                    row_params.append(
                        (pred_id, v.row, model_id, start_ns, v.kind, v.key, v.num, v.score, v.proba, weight, *label)
                    )
                    if label[2] is not None:
                        pred = (v.kind, v.key, v.num, v.score)
                        _add_quality(quality, 1, model_id, start_ns, pred, label, weight)
            else:
                for v in values:
                    row_params.append(
                        (
                            pred_id,
                            v.row,
                            model_id,
                            start_ns,
                            v.kind,
                            v.key,
                            v.num,
                            v.score,
                            v.proba,
                            weight,
                            None,
                            None,
                            None,
                        )
                    )
            minute = (model_id, start_ns // MINUTE_NS)
            cell = volume.get(minute)
            if cell is None:
                volume[minute] = [1, status, n_rows]
            else:
                cell[0] += 1
                cell[1] += status
                cell[2] += n_rows
            bucket = (model_id, start_ns // HOUR_NS, latency_bucket(latency_ns))
            latency[bucket] = latency.get(bucket, 0) + 1
            shared = (model_id, start_ns // HOUR_NS, instance_id or 0, aggregate_bucket(latency_ns))
            instance_latency[shared] = instance_latency.get(shared, 0) + 1
            if instance_id is not None:
                _count_call(instance_totals, (model_id, instance_id), status, n_rows)
                _count_call(instance_minutes, (model_id, start_ns // MINUTE_NS, instance_id), status, n_rows)
            stats = per_model.get(model_id)
            if stats is None:
                per_model[model_id] = [1, n_rows, start_ns, start_ns]
            else:
                stats[0] += 1
                stats[1] += n_rows
                if start_ns < stats[2]:
                    stats[2] = start_ns
                elif start_ns > stats[3]:
                    stats[3] = start_ns
        conn.executemany(_INSERT_PREDICTION, pred_params)
        conn.executemany(_INSERT_ROW, row_params)
        if joined:
            conn.executemany(_LABELS_JOINED, joined)
        conn.executemany(
            "UPDATE models SET calls = calls + ?, predictions = predictions + ?,"
            " first_seen_ns = min(first_seen_ns, ?), last_seen_ns = max(last_seen_ns, ?) WHERE id = ?",
            [(c, r, lo, hi, mid) for mid, (c, r, lo, hi) in per_model.items()],
        )
        conn.executemany(_VOLUME, [(*k, *v) for k, v in volume.items()])
        conn.executemany(_LATENCY, [(*k, v) for k, v in latency.items()])
        conn.executemany(_INSTANCE_LATENCY, [(*k, v) for k, v in instance_latency.items()])
        if instance_totals:
            conn.executemany(_INSTANCE_MODELS, [(*k, *v) for k, v in instance_totals.items()])
            conn.executemany(_INSTANCE_MINUTES, [(*k, *v) for k, v in instance_minutes.items()])
        if sampled:
            conn.executemany("UPDATE models SET sampled = 1 WHERE id = ?", [(mid,) for mid in sampled])
        self._write_quality(conn, quality)
        return len(fresh), total_rows

    @staticmethod
    def _write_quality(conn: sqlite3.Connection, deltas: _QualityDeltas) -> None:
        changed = [(*k, *v) for k, v in deltas.items() if any(v)]
        if changed:
            conn.executemany(_QUALITY, changed)
            conn.executemany(_QUALITY_EMPTY, [k for k, v in deltas.items() if v[0] <= 0])

    def _ingest_labels(self, conn: sqlite3.Connection, spans: Sequence[LabelSpan], now: int) -> tuple[int, int]:
        if not spans:
            return 0, 0
        unique = {(s.trace_id, s.span_id): s for s in spans}
        existing = self._existing(conn, "label_spans", list(unique))
        fresh = sorted((s for k, s in unique.items() if k not in existing), key=lambda s: s.time_ns)
        if not fresh:
            return 0, 0
        owner, joined = self._owners(conn, {s.trace_id for s in fresh})
        span_params = []
        upserts = []
        affected: dict[bytes, set[int]] = {}
        no_prediction = (None, None)
        for span in fresh:
            trace_id, label, time_ns = span.trace_id, span.label, span.time_ns
            prediction = joined.get(trace_id, no_prediction)
            # The JSON text as received when there is one (it parses to ``label``): no re-encoding.
            text = span.label_json if span.label_json is not None else _dumps(label)
            span_params.append((trace_id, span.span_id, span.row, text, time_ns, now))
            rows = affected.get(trace_id)
            if rows is None:
                rows = affected[trace_id] = set()
            if span.row is not None or not isinstance(label, list):
                # One row: the whole label is its value (label_rows' first and last rules).
                row = 0 if span.row is None else span.row
                vk = value_key(label)
                upserts.append((trace_id, row, text, vk.key, vk.num, vk.kind, time_ns, now, *prediction))
                rows.add(row)
                continue
            for row, value in label_rows(span):
                vk = value_key(value)
                upserts.append((trace_id, row, _dumps(value), vk.key, vk.num, vk.kind, time_ns, now, *prediction))
                rows.add(row)
        conn.executemany(
            "INSERT INTO label_spans (trace_id, span_id, row, label, time_ns, received_ns) VALUES (?, ?, ?, ?, ?, ?)",
            span_params,
        )
        conn.executemany(_UPSERT_LABEL, upserts)
        if owner:
            # Rows of these traces labelled before this request learnt their prediction when it was stored.
            self._apply_labels(conn, affected, owner)
        return len(fresh), len(upserts)

    @staticmethod
    def _owners(
        conn: sqlite3.Connection, trace_ids: set[bytes]
    ) -> tuple[dict[int, bytes], dict[bytes, tuple[int, int]]]:
        """The stored predictions of these traces: {prediction id: trace id}, and per trace the (row count,
        model id) of its first prediction."""
        owner: dict[int, bytes] = {}
        joined: dict[bytes, tuple[int, int]] = {}
        for chunk in _chunks(list({trace_key(t) for t in trace_ids})):
            marks = ",".join("?" * len(chunk))
            for pred_id, trace_id, n_rows, model_id in conn.execute(
                f"SELECT id, trace_id, n_rows, model_id FROM predictions WHERE trace_key IN ({marks})"
                " ORDER BY start_ns, id",
                chunk,
            ):
                if trace_id in trace_ids:
                    owner[pred_id] = trace_id
                    joined.setdefault(trace_id, (n_rows, model_id))
        return owner, joined

    @staticmethod
    def _apply_labels(conn: sqlite3.Connection, affected: dict[bytes, set[int]], owner: dict[int, bytes]) -> None:
        """Copy the current label of each affected (trace id, row) onto the prediction rows it joins (``owner``:
        the stored predictions of those traces), and move the row's contribution in ``quality_hours`` from its
        old label to its new one.

        The (prediction, row) pairs go into a temporary table, joined once to the prediction rows and the
        labels through their primary keys: work in proportion to the request. (Lists of traces crossed with
        lists of rows grow with the square of a request of labels each for its own trace and row.)
        """
        conn.execute(_AFFECTED_TABLE)
        conn.execute("DELETE FROM temp.affected_rows")
        conn.executemany(
            "INSERT OR IGNORE INTO temp.affected_rows (pred_id, row, trace_id) VALUES (?, ?, ?)",
            [(pred_id, row, trace_id) for pred_id, trace_id in owner.items() for row in affected[trace_id]],
        )
        updates: list[tuple[Any, ...]] = []
        quality: _QualityDeltas = {}
        # CROSS JOIN keeps the temporary table outermost: one primary-key probe per pair in each table.
        for found in conn.execute(
            "SELECT a.pred_id, a.row, pr.model_id, pr.start_ns, pr.kind, pr.pred_key, pr.pred_num, pr.score,"
            " pr.weight, pr.label_key, pr.label_num, pr.label_kind, l.label_key, l.label_num, l.label_kind"
            " FROM temp.affected_rows a"
            " CROSS JOIN prediction_rows pr ON pr.pred_id = a.pred_id AND pr.row = a.row"
            " CROSS JOIN labels l ON l.trace_id = a.trace_id AND l.row = a.row"
        ):
            pred_id, row, model_id, start_ns, kind, pred_key, pred_num, score, weight = found[:9]
            old = (found[9], found[10], found[11])
            label = (found[12], found[13], found[14])
            if old == label:
                continue
            pred = (kind, pred_key, pred_num, score)
            if old[2] is not None:
                _add_quality(quality, -1, model_id, start_ns, pred, old, weight)
            _add_quality(quality, 1, model_id, start_ns, pred, label, weight)
            updates.append((*label, pred_id, row))
        conn.execute("DELETE FROM temp.affected_rows")
        conn.executemany(
            "UPDATE prediction_rows SET label_key = ?, label_num = ?, label_kind = ? WHERE pred_id = ? AND row = ?",
            updates,
        )
        Store._write_quality(conn, quality)

    # -- aggregates (/v1/metrics) --------------------------------------------------------------------------

    def ingest_aggregates(self, points: Sequence[AggregatePoint], *, count_call: bool = True) -> int:
        """Store one request's aggregate points, all or none; a point already stored (a retry) is skipped.

        Returns how many points were new. The instance that sent them is marked as sending aggregates: from
        then on its calls, rows, errors and latencies are read from these points, not from its spans.
        """
        now = time.time_ns()
        new_models: dict[tuple[str, str, str], int] = {}
        new_instances: dict[str, int] = {}
        stored = 0
        with self.write() as conn:
            senders: set[int] = set()
            for point in points:
                model_id = self._model_id(
                    conn, (point.model, point.version, point.environment), point.end_ns, new_models
                )
                instance_id = self._instance_id(conn, point.instance, now, new_instances)
                senders.add(instance_id)
                buckets = None if point.buckets is None else json.dumps(point.buckets, separators=(",", ":"))
                inserted = conn.execute(
                    _INSERT_POINT,
                    (instance_id, point.metric, model_id, point.reason, point.start_ns, point.end_ns, point.value,
                     buckets, now),
                ).rowcount  # fmt: skip
                if not inserted:
                    continue
                stored += 1
                if point.buckets is not None:
                    hour = point.end_ns // HOUR_NS
                    conn.executemany(
                        _AGGREGATE_LATENCY, [(model_id, hour, b, n) for b, n in enumerate(point.buckets) if n]
                    )
                else:
                    minute = point.end_ns // MINUTE_NS
                    conn.execute(_AGGREGATE_MINUTES, (model_id, minute, point.metric, point.reason, point.value))
                total = _MODEL_TOTALS.get(point.metric)
                conn.execute(
                    f"UPDATE models SET first_seen_ns = min(first_seen_ns, ?), last_seen_ns = max(last_seen_ns, ?)"
                    f"{f', {total} = {total} + ?' if total else ''} WHERE id = ?",
                    (point.end_ns, point.end_ns, *((point.value,) if total else ()), model_id),
                )
            conn.executemany(
                "UPDATE instances SET aggregates_since_ns = ? WHERE id = ? AND aggregates_since_ns IS NULL",
                [(now, i) for i in senders],
            )
            self._add_usage(conn, now, int(count_call), 0, 0)
        self._model_ids.update(new_models)
        self._instance_ids.update(new_instances)
        return stored
