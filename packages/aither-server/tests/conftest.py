from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from otlp_builders import KEY, headers, metrics_body, protobuf_body
from pg_cluster import Cluster
from sqlalchemy import text

import aither
from aither_server import ServerThread, Store
from aither_server.store.engine import open_database, run

#: Every test that takes a database runs on both engines: SQLite (the embedded default) and PostgreSQL.
ENGINES = ["sqlite", "postgresql"]


class Server:
    """A real aither server on a free port, and an HTTP client with the admin key."""

    def __init__(self, thread: ServerThread, db: Path | str) -> None:
        self.thread = thread
        self.db = db
        self.url = thread.url
        self.http = httpx.Client(base_url=thread.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        #: No default headers: each request says which key it sends, if any.
        self.raw = httpx.Client(base_url=thread.url, timeout=30)

    def ingest(self, spans: list[Any], key: str | None = KEY, instance: str | None = None) -> httpx.Response:
        """POST the spans to /v1/traces, from the process ``instance`` (``service.instance.id``) if given."""
        return self.raw.post("/v1/traces", content=protobuf_body(spans, instance=instance), headers=headers(key))

    def send_aggregates(self, metrics: list[Any], instance: str | None = "instance-a") -> httpx.Response:
        """POST the metrics to /v1/metrics from the process ``instance``; asserts they were accepted."""
        response = self.raw.post("/v1/metrics", content=metrics_body(metrics, instance), headers=headers())
        assert response.status_code == 200, response.text
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        assert response.status_code == 200, response.text
        return response.json()

    def metrics(self, model: str, **params: Any) -> Any:
        return self.get(f"/api/v1/models/{model}/metrics", **params)

    def sql(self, statement: str, params: Mapping[str, object] | None = None) -> list[Any]:
        """Rows of one statement on the server's database, on a connection of its own (``:name`` parameters)."""
        return sql(self.db, statement, params)

    def stored_bytes(self) -> bytes:
        """Everything the database holds, as bytes: the SQLite file and its WAL, or each PostgreSQL row's text."""
        if isinstance(self.db, Path):
            return self.db.read_bytes() + self.db.with_name(self.db.name + "-wal").read_bytes()
        tables = [t for (t,) in self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return b"".join("\n".join(str(r[0]) for r in self.sql(f"SELECT t::text FROM {t} t")).encode() for t in tables)


def sql(db: Path | str, statement: str, params: Mapping[str, object] | None = None) -> list[Any]:
    """Rows of ``statement``: with ``params``, an SQLAlchemy ``text()`` with ``:name`` parameters, compiled for
    the engine (as the server's own statements are); without, the SQL both engines read alike."""
    conn = open_database(db).connect()
    try:
        if params is None:
            return conn.execute(statement).fetchall()
        return run(conn, text(statement), params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (an error, not a skip, where PostgreSQL is missing)."""
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def _database(request: pytest.FixtureRequest, folder: Path) -> Path | str:
    if request.param == "sqlite":
        return folder / "aither.db"
    cluster: Cluster = request.getfixturevalue("postgres")
    url = cluster.create_database()
    request.addfinalizer(lambda: cluster.drop_database(url))
    return url


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A new, empty database: an SQLite file's path, or a fresh PostgreSQL database's URL."""
    return _database(request, tmp_path)


@pytest.fixture(scope="module", params=ENGINES)
def module_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """:func:`database` shared by a module's tests."""
    return _database(request, tmp_path_factory.mktemp("db"))


def start_server(db: Path | str, **options: Any) -> ServerThread:
    store = Store(db)
    store.bootstrap(KEY)
    return ServerThread(store, **options).start()


def serve_at(db: Path | str, **options: Any) -> Iterator[Server]:
    """A server on ``db`` with ``create_app`` options, for fixtures: yields it, then stops it."""
    thread = start_server(db, **options)
    srv = Server(thread, db)
    try:
        yield srv
    finally:
        srv.http.close()
        srv.raw.close()
        thread.stop()


@pytest.fixture
def server(database: Path | str) -> Iterator[Server]:
    yield from serve_at(database)


@pytest.fixture
def sdk(server: Server) -> Iterator[Server]:
    """:func:`server`, with the SDK initialised to send to it (and closed after)."""
    aither.init(api_key=KEY, base_url=server.url, flush_interval=0.2)
    try:
        yield server
    finally:
        aither.close()


@pytest.fixture
def small_server(database: Path | str) -> Iterator[Server]:
    """Body limits of 64 KiB compressed and 256 KiB decompressed, to test 413s cheaply."""
    yield from serve_at(database, max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)


def _kib(field: str) -> int:
    found = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert found is not None
    return int(found.group(1)) * 1024


class PeakGrowth:
    """The peak resident size this process reaches inside the block, over its size when the block began."""

    def __enter__(self) -> PeakGrowth:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
        self.start = _kib("VmRSS")
        self.bytes = 0
        return self

    def __exit__(self, *_: object) -> None:
        self.bytes = _kib("VmHWM") - self.start


def child_processes(pid: int) -> dict[int, str]:
    """The child processes of ``pid`` and their command lines (Linux's /proc)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\\0", b" ").decode()
    return found


def gone(pids: Iterable[int], timeout_s: float = 30.0) -> bool:
    """Whether these processes have all ended (waiting up to ``timeout_s`` for them)."""
    deadline = time.monotonic() + timeout_s
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
