"""The server's database: its connections and write transactions, on SQLite or PostgreSQL (``store/engine.py``).

One writer connection per process behind a lock, and one read-only connection per thread, so reads never wait
for the writer (SQLite in WAL mode; PostgreSQL's MVCC). Ingestion uses group commit: requests that arrive
while a transaction is being written queue up, and the next writer stores all of them in one transaction, each
inside its own savepoint, so either all of a request's spans are stored or none, and every request returns only
after the transaction holding its spans has committed. Across processes (several servers on one PostgreSQL
database), write transactions take the engine's write lock, so they see each other's commits in order.

The jobs live in their own modules: ingestion (``store/ingestion.py``, which names the modules of its parts),
rollups (``store/rollups.py``), keys (``store/keys.py``), usage counts (``store/usage.py``), what is returned
(``store/results.py``); reads for the query API in ``query/``; the schema in ``store/migrations.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import Engine, bindparam, literal, select

from aither_server.model import api_keys
from aither_server.model.records import AggregatePoint, LabelSpan, PredictionSpan
from aither_server.store import keys as key_rows
from aither_server.store.core_tables import meta
from aither_server.store.engine import (
    Connection,
    insert_if_new,
    open_database,
    run,
    run_many,
    sqlalchemy_engine,
)
from aither_server.store.ingestion import Ingestor, NewIds
from aither_server.store.lookups import trace_key
from aither_server.store.migrations import migrate
from aither_server.store.results import (
    IngestResult,
    KeyRecord,
    LastAdminKey,
    OrgRecord,
    UsageRecord,
    month_period,
    period_key,
)
from aither_server.store.usage import Counts, add_usage

__all__ = [
    "IngestResult",
    "KeyRecord",
    "LastAdminKey",
    "OrgRecord",
    "Store",
    "UsageRecord",
    "month_period",
    "trace_key",
]

#: How often the maintenance thread writes the counts (and, on SQLite, copies the WAL back).
_MAINTENANCE_INTERVAL_S = 0.5
#: ``last_used_at`` is refreshed at most this often per key, so reads do not turn into writes.
_TOUCH_INTERVAL_NS = 60 * 1_000_000_000

_HAS_ORG = select(literal(1)).where(meta.c.key == "org_id")
_META = select(meta.c.key, meta.c.value)


_ADD_META = insert_if_new(meta, {"key": bindparam("meta_key"), "value": bindparam("meta_value")}, [meta.c.key])


def _local_user() -> str:
    try:
        return getpass.getuser() or "local"
    except Exception:  # getuser raises when no login name can be found (containers without /etc/passwd)
        return "local"


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
    """The server's database. Thread-safe; one instance per process and database.

    ``target`` is an SQLite file's path or a ``postgresql://`` URL.
    """

    def __init__(self, target: str | Path) -> None:
        self._db = open_database(target)
        #: The SQLite file (``None`` on PostgreSQL).
        self.path: Path | None = getattr(self._db, "path", None)
        #: The database as the server prints it (no password).
        self.target = self._db.display
        self.dialect = self._db.dialect
        #: The database as SQLAlchemy names it, for the modules that use SQLAlchemy Core (drift).
        self.sqlalchemy_url = self._db.sqlalchemy_url()
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Connection] = []
        self._readers_lock = threading.Lock()
        self._ingestor = Ingestor()
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()
        self._touched: dict[str, int] = {}
        self._counts = Counts()
        self._closed = False
        # The schema first, on its own connection (Alembic's), before this store opens any.
        migrate(target if self.path is None else self.path)
        self._writer = self._db.connect()
        self._db.prepare_writer(self._writer)
        self._stop = threading.Event()
        self._maintainer = threading.Thread(target=self._maintenance_loop, name="aither-maintenance", daemon=True)
        with self.write() as conn:
            if run(conn, _HAS_ORG).fetchone() is None:
                run_many(
                    conn,
                    _ADD_META,
                    [
                        {"meta_key": key, "meta_value": value}
                        for key, value in (
                            ("org_id", "org_" + secrets.token_hex(6)),
                            ("org_name", "local"),
                            ("plan", "local"),
                            ("created_ns", str(time.time_ns())),
                        )
                    ],
                )
        self._maintainer.start()

    def _maintenance_loop(self) -> None:
        try:
            conn = self._db.connect()
        except self._db.errors:  # the database went away under a closing store
            return
        try:
            while not self._stop.wait(_MAINTENANCE_INTERVAL_S):
                self._flush_counts(wait=False)
                self._db.maintain(conn)
        except self._db.errors:  # the file went away under a closing store; the writer's backstop remains
            pass
        finally:
            conn.close()

    def reader(self) -> Connection:
        """This thread's read-only connection."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = self._db.connect(readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; rolled back entirely if the block raises."""
        with self._write_lock:
            conn = self._writer
            self._db.begin(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @property
    def engine(self) -> Engine:
        """The process's one SQLAlchemy engine on this database, shared by drift, monitors and sign-in sessions
        (made on first use: the core tables' hot paths use the store's own connections)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = sqlalchemy_engine(self.sqlalchemy_url)
            return self._engine

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._maintainer.is_alive():
            self._maintainer.join()
        self._flush_counts(wait=True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        with self._write_lock:
            self._writer.close()
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()

    # -- organisation, usage -------------------------------------------------------------------------------

    def org(self) -> OrgRecord:
        found = dict(run(self.reader(), _META).fetchall())
        return OrgRecord(found["org_id"], found["org_name"], found["plan"], int(found["created_ns"]), _local_user())

    def count_api_call(self) -> None:
        """Count one API call: in memory now, in the database with the next write (within a second)."""
        self._counts.count_call()

    def _flush_counts(self, *, wait: bool) -> None:
        """Write the counts in their own transaction; without ``wait``, only when the writer is free."""
        if not self._counts.pending():
            return
        if not self._write_lock.acquire(blocking=wait):
            return
        try:
            conn = self._writer
            self._db.begin(conn)
            try:
                self._counts.write(conn)
                self._counts.commit(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._counts.rolled_back()
                raise
        except self._db.errors:  # a closing or broken database: the counts wait for the next write
            pass
        finally:
            self._write_lock.release()

    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database cannot be reached for now (PostgreSQL restarting, the network):
        the request is answered 503 with Retry-After, which senders retry, never 500."""
        return self._db.unavailable(exc)

    def usage(self, now_ns: int | None = None) -> UsageRecord:
        return self._counts.read(self.reader(), time.time_ns() if now_ns is None else now_ns)

    # -- API keys ------------------------------------------------------------------------------------------

    def bootstrap(self, bootstrap_key: str | None = None) -> str | None:
        """Make sure an admin key exists. Returns a newly generated key (to print once), else ``None``.

        ``bootstrap_key`` (``AITHER_BOOTSTRAP_KEY``) is added as an admin key unless its hash is already
        stored; a revoked bootstrap key stays revoked.
        """
        if bootstrap_key is not None and not api_keys.is_valid_key(bootstrap_key):
            raise ValueError("AITHER_BOOTSTRAP_KEY must be 'aith_' followed by 8 to 200 of [A-Za-z0-9_-]")
        with self.write() as conn:
            return key_rows.bootstrap(conn, bootstrap_key)

    def create_key(self, name: str, scopes: Sequence[str]) -> tuple[KeyRecord, str]:
        """A new key; its secret is returned here and never stored."""
        ordered = tuple(s for s in api_keys.SCOPES if s in scopes)
        secret = api_keys.generate_key()
        with self.write() as conn:
            return key_rows.create(conn, name, ordered, secret), secret

    def kept_key(self, name: str, scopes: Sequence[str]) -> tuple[str, bool]:
        """The secret of the key ``name`` this database keeps for a local tool (``aither demo``), and whether it
        was made just now. Made once and reused; made anew (and the earlier ones of that name revoked, so none
        pile up) when the kept one was revoked. The secret is kept in ``meta``, readable by anyone who can read
        the database, who can read all its data anyway; other keys stay hashes only."""
        ordered = tuple(s for s in api_keys.SCOPES if s in scopes)
        with self.write() as conn:
            return key_rows.kept(conn, name, ordered)

    def list_keys(self) -> list[KeyRecord]:
        return key_rows.list_all(self.reader())

    def revoke_key(self, key_id: str) -> KeyRecord | None:
        """Revoke a key at once; ``None`` if there is no such key. Revoking twice is harmless.

        Raises :class:`LastAdminKey` for the last live admin key; the check and the revocation are one write
        transaction, under the engine's write lock, so two processes cannot each revoke one of the last two.
        """
        with self.write() as conn:
            record = key_rows.revoke(conn, key_id)
        self._touched.pop(key_id, None)
        return record

    def authenticate(self, secret: str) -> api_keys.Principal | None:
        """The principal behind a key, or ``None`` for an unknown or revoked key.

        No cache: a revoked key is refused on the very next request, by every server on the same database.
        """
        if not secret.startswith(api_keys.KEY_PREFIX) or len(secret) > 256:
            return None
        found = key_rows.find(self.reader(), secret)
        if found is None:
            return None
        key_id, name, scopes, last_used = found
        now = time.time_ns()
        last = self._touched.get(key_id, last_used or 0)
        if now - last >= _TOUCH_INTERVAL_NS:
            self._touched[key_id] = now
            self._counts.touch(key_id, now)  # written with the next write, like the API call counts
        return api_keys.Principal(key_id, name, scopes)

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
        ingestor = self._ingestor
        new = NewIds()
        try:
            self._db.begin(conn)
            self._counts.write(conn)
            # Several requests share the transaction each in its own savepoint, so one that fails alone is
            # rolled back alone. A request on its own needs none: its failure rolls back the transaction.
            alone = len(jobs) == 1
            for job in jobs:
                job_new = NewIds()
                if alone:
                    job.result = self._store_job(conn, job, job_new)
                else:
                    conn.execute("SAVEPOINT job")
                    try:
                        job.result = self._store_job(conn, job, job_new)
                    except Exception as exc:
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        job.error = exc
                        continue
                    conn.execute("RELEASE job")
                new.add(job_new)
            self._counts.commit(conn)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._counts.rolled_back()
            for job in jobs:
                job.result = None
                job.error = job.error or exc
        else:
            # Only after COMMIT: a rolled-back transaction must not leave ids of models that do not exist.
            ingestor.remember(new)
        finally:
            for job in jobs:
                job.done = True

    def _store_job(self, conn: Connection, job: _Job, new: NewIds) -> IngestResult:
        now = time.time_ns()
        preds, rows = self._ingestor.predictions(conn, job.predictions, now, new)
        n_labels, n_label_rows = self._ingestor.labels(conn, job.labels, now)
        add_usage(conn, period_key(now), int(job.count_call), rows, n_label_rows, job.rejected_spans, job.ignored_spans)
        return IngestResult(preds, rows, n_labels, n_label_rows)

    def ingest_aggregates(self, points: Sequence[AggregatePoint], *, count_call: bool = True) -> int:
        """Store one request's aggregate points, all or none; a point already stored (a retry) is skipped.

        Returns how many points were new. The instance that sent them is marked as sending aggregates: from
        then on its calls, rows, errors and latencies are read from these points, not from its spans.
        """
        now = time.time_ns()
        new = NewIds()
        with self.write() as conn:
            stored = self._ingestor.aggregates(conn, points, now, new)
            add_usage(conn, period_key(now), int(count_call), 0, 0)
        self._ingestor.remember(new)
        return stored
