"""``aither server``: run the local aither server.

``aither._cli`` (aither-core's ``aither`` command) calls :func:`main` with the arguments after ``server``;
``python -m aither_server`` and the ``aither-server`` script do the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aither_server.store.retention import DEFAULT_RAW_DAYS, DEFAULT_ROLLUP_DAYS

__all__ = ["build_parser", "console_main", "main"]

DEFAULT_HOST = "127.0.0.1"
#: OTLP/HTTP's usual port: the SDK's default base URL, and where OpenTelemetry exporters send by default.
DEFAULT_PORT = 4318
#: Seconds a stopping server waits for requests in progress before it closes them.
SHUTDOWN_GRACE_S = 5
#: Overrides DEFAULT_PORT (``--port`` overrides both).
PORT_VARIABLE = "AITHER_SERVER_PORT"
#: The database when ``--db`` is not given: a path or a ``postgresql://`` URL.
DATABASE_VARIABLE = "AITHER_DATABASE_URL"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, not {port}")
    return port


def build_parser(prog: str = "aither server") -> argparse.ArgumentParser:
    from aither_server.runner import default_db_path

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the local aither server: OTLP ingestion, API keys, the management and query API.",
        epilog=(
            "On a new database an admin API key is printed once. Set AITHER_BOOTSTRAP_KEY=aith_... to seed a "
            "known admin key instead."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=_port, default=None, help=f"port (default ${PORT_VARIABLE}, else {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--db",
        default=None,
        help=(
            f"an SQLite database file (a path or sqlite:///path; a missing folder is created, and said so), or a"
            f" postgresql://user@host:port/name URL for several server processes on one database (default"
            f" ${DATABASE_VARIABLE}, else {default_db_path()})"
        ),
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=20.0,
        help="largest compressed /v1/traces body, in MiB (default 20)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        help="seconds a request's whole body may take to arrive before it is answered 408 (default 60)",
    )
    parser.add_argument(
        "--label-grace-minutes",
        type=float,
        default=10.0,
        help="how long a label may wait for its prediction before it is listed as unjoined (default 10)",
    )
    parser.add_argument(
        "--max-decompressed-mb",
        type=float,
        default=64.0,
        help="largest decompressed body, in MiB (default 64)",
    )
    parser.add_argument(
        "--max-inflight-mb",
        type=float,
        default=None,
        help="request bytes held at once, bodies and their decompressed sizes, before new requests get 503"
        " (default twice --max-body-mb plus --max-decompressed-mb)",
    )
    parser.add_argument(
        "--max-attribute-kb",
        type=float,
        default=1024.0,
        help="largest ml.features / ml.prediction / ml.label stored whole; larger ones are stored truncated,"
        " marked as the SDK marks them (default 1024)",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=DEFAULT_RAW_DAYS,
        help=f"delete predictions and labels older than this; 0 keeps them (default {DEFAULT_RAW_DAYS:g})",
    )
    parser.add_argument(
        "--rollup-retention-days",
        type=float,
        default=DEFAULT_ROLLUP_DAYS,
        help=f"delete per-minute and per-hour rollups older than this; 0 keeps them (default {DEFAULT_ROLLUP_DAYS:g})",
    )
    parser.add_argument(
        "--monitor-interval",
        type=float,
        default=60.0,
        help="seconds between two evaluations of every monitor; 0 evaluates only on request (default 60)",
    )
    parser.add_argument(
        "--allow-private-webhooks",
        action="store_true",
        help="let monitors' webhooks target loopback and private addresses (refused by default)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["server"]:
        args_list = args_list[1:]
    args = build_parser().parse_args(args_list)

    import uvicorn

    from aither_server.app import create_app, inflight_bytes
    from aither_server.http_head import BoundedHead
    from aither_server.runner import SHUTDOWN_GRACE_S, CannotListen, default_db_path, listen
    from aither_server.store.database import Store
    from aither_server.store.engine import database_target, open_database
    from aither_server.store.migrations import SchemaTooNew
    from aither_server.store.retention import Retention, RetentionThread

    try:  # a --db that names no database is refused before anything starts
        db = database_target(args.db or os.environ.get(DATABASE_VARIABLE) or str(default_db_path()))
    except ValueError as exc:
        print(f"aither server: {exc}", file=sys.stderr)
        return 2
    max_body = int(args.max_body_mb * 1024 * 1024)
    max_decompressed = int(args.max_decompressed_mb * 1024 * 1024)
    requested = None if args.max_inflight_mb is None else int(args.max_inflight_mb * 1024 * 1024)
    try:  # limits that contradict each other are refused before anything starts
        max_inflight = inflight_bytes(max_body, max_decompressed, requested)
    except ValueError as exc:
        print(f"aither server: --max-inflight-mb: {exc}", file=sys.stderr)
        return 2
    port = args.port
    if port is None:
        try:
            port = _port(os.environ.get(PORT_VARIABLE) or str(DEFAULT_PORT))
        except argparse.ArgumentTypeError as exc:
            print(f"aither server: {PORT_VARIABLE}: {exc}", file=sys.stderr)
            return 2
    # The port first: nothing is printed (not even a new admin key) for a server that cannot start.
    try:
        sock = listen(args.host, port, way_out=f"--port N or {PORT_VARIABLE}=N")
    except CannotListen as exc:
        print(f"aither server: {exc}", file=sys.stderr)
        return 2
    if isinstance(db, Path) and not db.parent.exists():
        print(f"aither server: created the folder {db.parent} for the database", flush=True)
    bootstrap = os.environ.get("AITHER_BOOTSTRAP_KEY") or None
    try:
        store = Store(db)
        new_key = store.bootstrap(bootstrap)
    except (SchemaTooNew, ValueError, OSError) as exc:
        sock.close()
        print(f"aither server: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # sqlite3.DatabaseError on a file that is not a database, a refused connection, etc.
        sock.close()
        shown = db if isinstance(db, Path) else open_database(db).display
        print(f"aither server: cannot open {shown}: {exc}", file=sys.stderr)
        return 2
    if new_key is not None:
        # Printed once, on purpose: only its hash is stored, so this is the one chance to copy it.
        print(
            "A new database: here is its admin API key. It is shown once and stored only as a hash.\n\n"
            f"    export AITHER_API_KEY={new_key}\n",
            flush=True,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    port = sock.getsockname()[1]
    print(f"aither server on http://{host}:{port}  (database: {store.target})", flush=True)
    print(f"    export AITHER_BASE_URL=http://{host}:{port}", flush=True)
    # A server listening on every interface is browsed at the loopback address.
    browse = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    print(f"Dashboard: http://{browse}:{port}/  (sign in with an API key with the read scope)", flush=True)
    app = create_app(
        store,
        max_body_bytes=max_body,
        max_decompressed_bytes=max_decompressed,
        label_grace_s=args.label_grace_minutes * 60,
        max_inflight_bytes=max_inflight,
        max_attribute_bytes=int(args.max_attribute_kb * 1024),
        monitor_interval_s=args.monitor_interval,
        allow_private_webhooks=args.allow_private_webhooks,
        drift_process=True,
        body_timeout_s=args.body_timeout,
    )
    retention = RetentionThread(
        store, Retention(args.retention_days or None, args.rollup_retention_days or None)
    ).start()
    # On SIGTERM, requests still running after this are abandoned: a page whose client has gone never holds
    # the server up.
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=SHUTDOWN_GRACE_S, http=BoundedHead)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        retention.stop()
        store.close()
    return 0


def console_main() -> None:
    sys.exit(main())
