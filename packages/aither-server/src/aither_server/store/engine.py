"""Which database a store writes to, and its connections: an SQLite file (the embedded default) or PostgreSQL.

``--db`` / ``AITHER_DATABASE_URL`` takes a path (SQLite) or a ``postgresql://`` URL. Each engine here supplies
its connections, how a write transaction begins, and its driver's errors; the statements are SQLAlchemy Core.

Write transactions are serialised across processes, as SQLite's file lock serialises them: on PostgreSQL each
takes one transaction-scoped advisory lock right after ``BEGIN``. So a span retried to another process sees the
first one stored, a label arriving at one process while its prediction arrives at another joins once (whichever
commits second sees the other), the last admin key cannot be revoked by two processes at once, and rollups stay
exact. Reads take no lock and run in parallel on every process.

Every statement over the store's tables is SQLAlchemy Core (a ``select``, ``insert``, ``update`` or ``delete`` over
the ``Table`` objects of ``store/core_tables.py``): :func:`run` / :func:`run_many` execute one on a store
:class:`Connection` of either engine, inside whatever transaction it holds, under the same write lock. Each
statement is compiled once per engine, in the driver's own positional parameter style (``?`` for sqlite3, ``%s``
for psycopg), and cached by statement object: build statements once, as module constants with named
``bindparam()`` s, and pass their values by name (put in order by one ``itemgetter``; about 1 us of CPU a call
more than a string on the driver's path). An expanding ``IN`` list gets one SQL per length of its lists, each
made once. Values go to the driver and rows come back as it gives them (no SQLAlchemy type processing). A
statement whose form differs by engine (an ``ON CONFLICT`` clause, a list as one array) is a
:class:`PerDialect`, and :func:`upsert`, :func:`insert_if_new` and :func:`among` build the common ones; an
expression that differs (:func:`least` / :func:`greatest`, :func:`json_array_length`, :func:`indexed_by`'s hint)
compiles per engine inside one statement. Many rows of an INSERT, an upsert or a keyed UPDATE go to PostgreSQL
by COPY or as arrays (``store/pg_bulk.py``, planned from the SQL SQLAlchemy compiled). The only SQL strings left
are the engines' own commands without parameters (``BEGIN``, ``PRAGMA``, a writer's temporary table).
"""

from __future__ import annotations

import operator
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    literal_column,
)
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnClause, ColumnElement, KeyedColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.type_api import TypeEngine
from typing_extensions import TypeVarTuple, Unpack

from aither_server.store import pg_bulk

if TYPE_CHECKING:
    import psycopg
    from psycopg.abc import AdaptContext, Buffer, Dumper
    from psycopg.adapt import Loader
    from psycopg.rows import TupleRow
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

__all__ = [
    "Connection",
    "Cursor",
    "Database",
    "PerDialect",
    "PostgresDatabase",
    "SqliteDatabase",
    "among",
    "constant",
    "database_target",
    "dialect_of",
    "greatest",
    "indexed_by",
    "insert_if_new",
    "is_url",
    "json_array_length",
    "least",
    "open_database",
    "run",
    "run_many",
    "sqlalchemy_engine",
    "upsert",
]

#: The advisory lock every PostgreSQL write transaction (and migration) holds: any 64-bit number of our own.
WRITE_LOCK = 0x61697468_65720001

#: The SQLite writer checkpoints by itself only when the WAL reaches this many pages (4 KiB each): a backstop.
_BACKSTOP_CHECKPOINT_PAGES = 65536

_Ts = TypeVarTuple("_Ts")

_URL_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


# The raw DB-API row protocol: a row's columns are whatever the statement selects.
class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the store uses (``sqlite3.Connection`` is one)."""

    def execute(self, sql: str, parameters: Sequence[object] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[object]], /) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (else it is an SQLite file's path)."""
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


class Database(Protocol):
    """One engine: connections, how write transactions begin, and its errors."""

    dialect: str
    """``sqlite`` or ``postgresql``."""
    display: str
    """What the server prints as its database (a PostgreSQL URL without its password)."""
    errors: tuple[type[Exception], ...]
    """The driver's base errors (a closing or unreachable database)."""

    def connect(self, *, readonly: bool = False) -> Connection: ...

    def prepare_writer(self, conn: Connection) -> None:
        """Settings of the database itself, made once by each store's writer."""

    def begin(self, conn: Connection) -> None:
        """Begin a write transaction, holding the engine's write lock until it ends."""

    def maintain(self, conn: Connection) -> None:
        """Periodic housekeeping on a connection of its own (SQLite: copy the WAL back)."""

    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database cannot be reached (for now): the request may be retried."""

    def sqlalchemy_url(self) -> str: ...


class SqliteDatabase:
    """An SQLite file in WAL mode: readers never wait for the (one) writer."""

    dialect = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.display = str(self.path)

    def connect(self, *, readonly: bool = False) -> Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        # NORMAL is durable across application crashes in WAL mode; a power loss may drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        return conn

    def prepare_writer(self, conn: Connection) -> None:
        # WAL lets readers run beside the writer; it is a property of the file, so set once here.
        conn.execute("PRAGMA journal_mode=WAL")
        # Checkpoints (copying the WAL back into the database, with an fsync) run on the store's maintenance
        # thread, off the commit path; the writer's automatic checkpoint is only a backstop if that falls behind.
        conn.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_CHECKPOINT_PAGES}")

    def begin(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def maintain(self, conn: Connection) -> None:
        # PASSIVE never blocks the writer or readers; it copies what it can.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def unavailable(self, exc: BaseException) -> bool:
        return False  # a file: its errors do not pass by themselves

    def sqlalchemy_url(self) -> str:
        return f"sqlite:///{self.path}"


# -- PostgreSQL ----------------------------------------------------------------------------------------------


class _PgCursor:
    def __init__(self, cursor: psycopg.Cursor[TupleRow]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class _PgConnection:
    """A psycopg connection in autocommit mode (transactions are explicit ``BEGIN`` / ``COMMIT``, as with
    SQLite). SQL given as a string is the driver's own (``%s`` placeholders), never rewritten: the store's
    statements are Core, compiled for psycopg by :func:`run`."""

    def __init__(self, open_raw: Callable[[], psycopg.Connection[TupleRow]]) -> None:
        self._open = open_raw
        self._raw = open_raw()
        self._bulks: dict[str, pg_bulk.Bulk | None] = {}
        self._column_types: dict[str, dict[str, str]] = {}

    def _cursor(self) -> psycopg.Cursor[TupleRow]:
        """A cursor; on a new connection when the last one broke (PostgreSQL restarted, a connection killed)
        and no transaction was open on it: the failed transaction already failed its request."""
        if self._raw.broken or self._raw.closed:
            self._raw.close()
            self._raw = self._open()
        return self._raw.cursor()

    def execute(self, sql: str, parameters: Sequence[object] = (), /) -> Cursor:
        cursor = self._cursor()
        cursor.execute(sql, tuple(parameters) if parameters else None)
        return _PgCursor(cursor)

    def executemany(self, sql: str, parameters: Iterable[Sequence[object]], /) -> Cursor:
        """Many rows of one statement: a plain INSERT by COPY, an upsert or keyed UPDATE as one statement over
        arrays or a COPY'd stage (``store/pg_bulk.py``), anything else one statement per row."""
        rows = [tuple(p) for p in parameters]
        cursor = self._cursor()
        if not rows:
            return _PgCursor(cursor)
        bulk = self._bulk(sql) if len(rows) > 1 else None
        if bulk is not None and bulk.copy:
            with cursor.copy(f"COPY {bulk.table} ({', '.join(bulk.columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        elif bulk is not None and bulk.unique(rows) and len(rows) >= pg_bulk.STAGE_ROWS:
            self._staged(cursor, bulk, rows)
        elif bulk is not None and bulk.unique(rows):
            statement, values = pg_bulk.arrays(bulk, self._types(bulk.table), rows)
            cursor.execute(statement, values)
        else:
            cursor.executemany(sql, rows)
        return _PgCursor(cursor)

    @staticmethod
    def _staged(cursor: psycopg.Cursor[TupleRow], bulk: pg_bulk.Bulk, rows: list[tuple[object, ...]]) -> None:
        """Many rows of an upsert or keyed UPDATE: COPY'd into a temporary table of this connection, then
        applied by one statement reading it (psycopg dumps the array parameters of ``arrays`` in Python, about
        2 us a value: 16,000 labels took 0.9 s that way)."""
        stage, columns = f"aither_stage_{bulk.table}", ", ".join(bulk.columns)
        # Created on first use; emptied right after use (a second use in the transaction must not see these rows).
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT * FROM {bulk.table} WITH NO DATA"
        )
        with cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(bulk.statement.format(arrays=f"(SELECT {columns} FROM {stage})"))
        cursor.execute(f"TRUNCATE {stage}")  # cheaper than DELETE for a temporary table

    def _bulk(self, sql: str) -> pg_bulk.Bulk | None:
        if sql not in self._bulks:
            self._bulks[sql] = pg_bulk.plan(sql)
        return self._bulks[sql]

    def _types(self, table: str) -> dict[str, str]:
        """The PostgreSQL type of each column of ``table``."""
        found = self._column_types.get(table)
        if found is None:
            cursor = self._raw.cursor()
            cursor.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
            found = self._column_types[table] = dict(cursor.fetchall())
        return found

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self._raw.info.transaction_status != TransactionStatus.IDLE)

    def close(self) -> None:
        self._raw.close()


def _numeric_loader() -> type[Loader]:
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        """``numeric`` (what PostgreSQL's ``sum`` of integers returns) as int or float, as SQLite gives them,
        never ``Decimal``."""

        def load(self, data: Buffer) -> int | float:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    return NumericLoader


#: What a NUL character of a string becomes on PostgreSQL, whose text cannot hold one (docs/wire-contract.md).
NUL_REPLACEMENT = "\ufffd"
_nul_free = False


def _register_nul_free_strings() -> None:
    """Every str psycopg sends, on every connection of the process (the store's, SQLAlchemy's for drift and
    monitors; parameters, COPY rows): a NUL character becomes U+FFFD. PostgreSQL refuses a NUL in text, and
    one such value (a model name, an error message, a query parameter) would fail its whole request."""
    global _nul_free
    if _nul_free:
        return
    import psycopg
    from psycopg.adapt import PyFormat

    for format_ in (PyFormat.TEXT, PyFormat.BINARY):
        psycopg.adapters.register_dumper(str, _nul_free_dumper(psycopg.adapters.get_dumper(str, format_)))
    _nul_free = True


def _nul_free_dumper(base: type[Dumper]) -> type[Dumper]:
    """A dumper of str doing what ``base`` (psycopg's own, a C class that cannot be subclassed) does, after
    replacing each NUL character."""
    from psycopg.adapt import Dumper

    class NulFree(Dumper):
        format = base.format
        oid = base.oid

        def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
            super().__init__(cls, context)
            self._base = base(cls, context)

        def dump(self, obj: str) -> Buffer | None:
            return self._base.dump(obj.replace("\x00", NUL_REPLACEMENT) if "\x00" in obj else obj)

    return NulFree


class PostgresDatabase:
    """A PostgreSQL database, through psycopg 3; several server processes may share it."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        _register_nul_free_strings()

        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
        self.display = re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", self.url)
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self._loader = _numeric_loader()

    def connect(self, *, readonly: bool = False) -> Connection:
        return _PgConnection(lambda: self._open(readonly))

    def _open(self, readonly: bool) -> psycopg.Connection[TupleRow]:
        import psycopg

        raw = psycopg.connect(self.url, autocommit=True)
        raw.adapters.register_loader("numeric", self._loader)
        if readonly:
            raw.execute("SET default_transaction_read_only = on")
        else:
            # A writer's reads are all key lookups (is this span stored? which labels wait for these traces?).
            # Between autovacuum's ANALYZEs a table that grew from empty is planned as tiny and scanned whole
            # per request; with sequential scans priced out, those lookups take their index from the first.
            raw.execute("SET enable_seqscan = off")
        return raw

    def unavailable(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError)

    def prepare_writer(self, conn: Connection) -> None:
        return None

    def begin(self, conn: Connection) -> None:
        # One round trip: without parameters, psycopg sends both as one simple query, and waits for both.
        conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    def maintain(self, conn: Connection) -> None:
        return None  # PostgreSQL checkpoints and vacuums by itself

    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def database_target(text: str) -> str | Path:
    """What ``--db`` names: a ``postgresql://`` URL as it is, ``sqlite:///path`` or a plain path as an SQLite
    file's path. A URL of another scheme (``mysql://``, ``http://``) raises ``ValueError``: it is not a file name."""
    if is_url(text):
        return text
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :]).expanduser()
    if _SCHEME.match(text):
        raise ValueError(
            f"--db takes a path, sqlite:///path or postgresql://...; {text.split('://', 1)[0]}:// is not supported"
        )
    return Path(text).expanduser()


def open_database(target: str | Path) -> SqliteDatabase | PostgresDatabase:
    """The engine for ``target``: a ``postgresql://`` URL, else an SQLite file's path."""
    if is_url(target):
        return PostgresDatabase(str(target))
    return SqliteDatabase(target)


def sqlalchemy_engine(url: str) -> Engine:
    """The SQLAlchemy engine on the database the core store uses (on SQLite, WAL: readers beside its writer; a
    writer waits). One per process: :attr:`Store.engine <aither_server.store.database.Store.engine>` holds it."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30.0, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: sqlite3.Connection, _: object) -> None:
        # As the core store's connections: durable across application crashes in WAL mode, no fsync per commit.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    return engine


# -- SQLAlchemy Core on the store's connections ----------------------------------------------------------------


class PerDialect:
    """A statement whose SQL differs by engine: ``build(dialect)`` (``sqlite`` or ``postgresql``) makes it,
    once per engine, on first use."""

    def __init__(self, build: Callable[[str], Executable]) -> None:
        self._build = build
        self._built: dict[str, Executable] = {}

    def statement(self, dialect: str) -> Executable:
        found = self._built.get(dialect)
        if found is None:
            found = self._built[dialect] = self._build(dialect)
        return found


#: ``excluded``: the row an upsert proposed, by column.
_Excluded = ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]


def upsert(
    table: Table,
    values: Mapping[str, object],
    key: Sequence[Column[Any]],
    update: Callable[[_Excluded], Mapping[str, object]],
    where: Callable[[_Excluded], ColumnElement[bool]] | None = None,
) -> PerDialect:
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET update(excluded) [WHERE where(excluded)]``, in each engine's
    dialect module (their ``on_conflict_do_update`` clauses do not compile on the other)."""

    def build(dialect: str) -> Executable:
        insert = _dialect_insert(dialect, table).values(dict(values))
        return insert.on_conflict_do_update(
            index_elements=list(key),
            set_=dict(update(insert.excluded)),
            where=None if where is None else where(insert.excluded),
        )

    return PerDialect(build)


def insert_if_new(table: Table, values: Mapping[str, object], key: Sequence[Column[Any]]) -> PerDialect:
    """``INSERT ... ON CONFLICT (key) DO NOTHING``, in each engine's dialect module; never ``RETURNING`` a
    generated key (SQLAlchemy's habit on PostgreSQL): a caller reads the id by its key after."""
    return PerDialect(
        lambda dialect: (
            _dialect_insert(dialect, table)
            .inline()
            .values(dict(values))
            .on_conflict_do_nothing(index_elements=list(key))
        )
    )


def _dialect_insert(dialect: str, table: Table) -> SqliteInsert | PgInsert:
    """The INSERT of ``dialect``'s own module: its ``ON CONFLICT`` clauses compile on that engine only."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(table)


class _Compiled:
    """A statement's SQL for one driver (positional parameters), and how a caller's named values become them.

    A statement with an expanding ``IN`` list (``bindparam(name, expanding=True)``) has one SQL per length of
    its lists: each is made once, by SQLAlchemy, and remembered with where each of its parameters comes from."""

    __slots__ = ("_compiler", "_defaults", "_expanding", "_shapes", "parameters", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a Core statement: {statement!r}")
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.escaped_bind_names:
            # Renamed parameters are filled by SQLAlchemy's execution, which this bypasses.
            raise ValueError(f"not a statement the store runs itself (rename its parameters): {statement}")
        # The values of the statement's literals; a bindparam() without one is the caller's to give.
        defaults = {name: value for name, value in compiled.params.items() if not compiled.binds[name].required}
        self._defaults = defaults
        self._expanding = tuple(name for name, bind in compiled.binds.items() if bind.expanding)
        self._compiler = compiled
        self._shapes: dict[tuple[int, ...], tuple[str, Callable[[Mapping[str, object]], tuple[object, ...]]]] = {}
        #: ``None`` for a statement with IN lists (see :meth:`expand`).
        self.sql: str | None = None if self._expanding else compiled.string
        names = tuple(compiled.positiontup or ())
        ordered = _picker(names)
        #: The driver's parameters from the caller's named values (a plain attribute: run's hot path).
        self.parameters = (lambda given: ordered({**defaults, **given})) if defaults else ordered

    def expand(self, given: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
        """The SQL and parameters of a statement with IN lists, for the lengths of ``given``'s lists."""
        values = {**self._defaults, **given} if self._defaults else given
        expanding = self._expanding
        if len(expanding) == 1:  # the common case (a list of model ids): no generator
            shape: tuple[int, ...] = (len(_sequence(values[expanding[0]], expanding[0])),)
        else:
            shape = tuple(len(_sequence(values[name], name)) for name in expanding)
        found = self._shapes.get(shape)
        if found is None:
            if len(self._shapes) > 64:  # lists of every length: keep it bounded
                self._shapes.clear()
            found = self._shapes[shape] = self._expand(values, shape)
        sql, pick = found
        return sql, pick(values)

    def _expand(
        self, values: Mapping[str, object], shape: tuple[int, ...]
    ) -> tuple[str, Callable[[Mapping[str, object]], tuple[object, ...]]]:
        # SQLAlchemy writes the SQL for one set of values; marker objects show where each position's value
        # comes from (a named parameter, or one item of a list), so later calls only pick their values.
        markers: dict[str, object] = dict(values)
        origin: dict[int, tuple[str, int]] = {}
        for name, length in zip(self._expanding, shape, strict=True):
            items = [object() for _ in range(length)]
            origin.update({id(item): (name, i) for i, item in enumerate(items)})
            markers[name] = items
        state = self._compiler.construct_expanded_state(markers)
        sources = [origin.get(id(state.parameters[p]), (p, -1)) for p in state.positiontup or ()]
        # Runs: a named value, or a whole list whose items stand in order side by side (an IN list), so a call
        # copies each list at once instead of item by item.
        runs: list[tuple[str, bool]] = []
        at = 0
        while at < len(sources):
            name, i = sources[at]
            length = shape[self._expanding.index(name)] if i == 0 else 0
            if i == 0 and sources[at : at + length] == [(name, k) for k in range(length)]:
                runs.append((name, True))
                at += length
            elif i < 0:
                runs.append((name, False))
                at += 1
            else:  # an item out of order: never seen from SQLAlchemy, refused rather than guessed
                raise ValueError(f"list parameter {name!r} is not one run of positions")

        def pick(given: Mapping[str, object]) -> tuple[object, ...]:
            values: list[object] = []
            for name, whole in runs:
                if whole:
                    values.extend(_sequence(given[name], name))
                else:
                    values.append(given[name])
            return tuple(values)

        return state.statement, pick


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, object]], tuple[object, ...]]:
    # itemgetter: one C call puts the values in order, and a missing name raises KeyError naming it.
    if not names:
        return lambda _: ()
    getter = operator.itemgetter(*names)
    if len(names) == 1:
        return lambda given: (getter(given),)
    return getter


def _sequence(value: object, name: str) -> Sequence[object]:
    if type(value) is list or type(value) is tuple:  # the callers' own: cheaper than the ABC check below
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"parameter {name!r} is an IN list: give a list or tuple, not {type(value).__name__}")
    return value


#: Compiled statements by statement object, one dict an engine (a lookup keyed by the object alone is run's
#: cheapest); module constants stay, statements built per call do not.
_sqlite_compiled: dict[Executable | PerDialect, _Compiled] = {}
_postgres_compiled: dict[Executable | PerDialect, _Compiled] = {}
_dialects: dict[str, Dialect] = {}
_NO_PARAMETERS: Mapping[str, object] = MappingProxyType({})


def _dialect(name: str) -> Dialect:
    found = _dialects.get(name)
    if found is None:
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

            found = SQLiteDialect_pysqlite(paramstyle="qmark")
            found.statement_compiler = _sqlite_hinting_compiler()
        else:
            from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
            from sqlalchemy.engine.interfaces import BindTyping

            found = PGDialect_psycopg(paramstyle="format")  # type: ignore[no-untyped-call]
            # No ``::INTEGER`` casts on parameters: the columns' types decide, as for the store's SQL strings
            # (a nanosecond timestamp overflows the ``integer`` SQLAlchemy's Integer would cast it to).
            found.bind_typing = BindTyping.NONE
        _dialects[name] = found
    return found


def _sqlite_hinting_compiler() -> type[SQLiteCompiler]:
    class HintingCompiler(SQLiteCompiler):
        """SQLite's compiler, writing a table's ``with_hint(table, "INDEXED BY index", "sqlite")`` after it
        (SQLAlchemy's own drops hints on SQLite). The store names an index where SQLite's planner, without
        statistics, would pick a worse one; PostgreSQL's planner needs no hint, and gets none."""

        def get_from_hint_text(self, table: FromClause, text: str | None) -> str | None:
            return text

    return HintingCompiler


def indexed_by(statement: Select[Unpack[_Ts]], table: FromClause, index: str) -> Select[Unpack[_Ts]]:
    """``statement`` reading ``table`` through ``index`` on SQLite (``FROM table INDEXED BY index``)."""
    return statement.with_hint(table, f"INDEXED BY {index}", dialect_name="sqlite")


class json_array_length(FunctionElement[int]):
    """The length of a JSON array held as text: PostgreSQL's function takes ``json``, so the text is cast."""

    type = Integer()
    inherit_cache = True
    name = "json_array_length"


class least(FunctionElement[Any]):
    """The smaller of two values: PostgreSQL's ``LEAST``, SQLite's two-argument ``min``."""

    inherit_cache = True
    name = "least"


class greatest(FunctionElement[Any]):
    """The larger of two values: PostgreSQL's ``GREATEST``, SQLite's two-argument ``max``."""

    inherit_cache = True
    name = "greatest"


@compiles(least)
@compiles(greatest)
def _extreme(element: least | greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{element.name}({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
@compiles(greatest, "sqlite")
def _extreme_sqlite(element: least | greatest, compiler: SQLCompiler, **kw: Any) -> str:
    name = "min" if isinstance(element, least) else "max"
    return f"{name}({compiler.process(element.clauses, **kw)})"


@compiles(json_array_length, "postgresql")
def _json_array_length_postgres(element: json_array_length, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length(CAST({compiler.process(element.clauses, **kw)} AS json))"


@compiles(json_array_length)
def _json_array_length(element: json_array_length, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length({compiler.process(element.clauses, **kw)})"


def constant(value: int | str) -> ColumnClause[Any]:
    """``value`` written into the SQL itself rather than bound: SQLite's planner sees a partial index's
    condition (``kind = 2``) implied only by a literal, and a statement run for many rows binds nothing for it."""
    if isinstance(value, str):
        return literal_column("'" + value.replace("'", "''") + "'", Text)
    return literal_column(str(int(value)), Integer)


def among(column: ColumnElement[Any], name: str, dialect: str, pg_type: TypeEngine[Any]) -> ColumnElement[bool]:
    """``column`` among the list parameter ``name``: on PostgreSQL one array (``= ANY(CAST(%s AS type[]))``,
    one statement prepared once whatever the length), on SQLite an ``IN`` list (run it in chunks of
    ``lookups.CHUNK``: SQLite limits a statement's parameters)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(cast(bindparam(name), ARRAY(pg_type)))
    return column.in_(bindparam(name, expanding=True))


def dialect_of(conn: Connection) -> str:
    """``sqlite`` or ``postgresql``: the engine of a store connection."""
    if isinstance(conn, sqlite3.Connection):
        return "sqlite"
    if isinstance(conn, _PgConnection):
        return "postgresql"
    raise TypeError(f"not a store connection: {conn!r}")


def _compile(dialect: str, statement: Executable | PerDialect) -> _Compiled:
    cache = _sqlite_compiled if dialect == "sqlite" else _postgres_compiled
    found = cache.get(statement)
    if found is None:
        if len(cache) > 2000:  # statements built per call: keep the cache bounded
            cache.clear()
        built = statement.statement(dialect) if isinstance(statement, PerDialect) else statement
        found = cache[statement] = _Compiled(built, _dialect(dialect))
    return found


def run(
    conn: Connection, statement: Executable | PerDialect, parameters: Mapping[str, object] = _NO_PARAMETERS, /
) -> Cursor:
    """Execute a Core statement on ``conn`` (either engine), its ``bindparam()`` s given by name (a list for an
    expanding ``IN``)."""
    if isinstance(conn, sqlite3.Connection):
        compiled = _sqlite_compiled.get(statement) or _compile("sqlite", statement)
        if compiled.sql is None:
            return conn.execute(*compiled.expand(parameters))
        return conn.execute(compiled.sql, compiled.parameters(parameters))
    if isinstance(conn, _PgConnection):
        compiled = _postgres_compiled.get(statement) or _compile("postgresql", statement)
        if compiled.sql is None:
            return conn.execute(*compiled.expand(parameters))
        return conn.execute(compiled.sql, compiled.parameters(parameters))
    raise TypeError(f"not a store connection: {conn!r}")


def run_many(conn: Connection, statement: Executable | PerDialect, rows: Iterable[Mapping[str, object]], /) -> Cursor:
    """Execute a Core statement once per row of parameters. On PostgreSQL many rows of a plain INSERT go
    through COPY, of an upsert or keyed UPDATE through one statement over arrays (``store/pg_bulk.py``)."""
    dialect = dialect_of(conn)
    compiled = _compile(dialect, statement)
    if compiled.sql is None:
        raise ValueError(f"an IN list is one statement's, not many rows': {statement}")
    return conn.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
