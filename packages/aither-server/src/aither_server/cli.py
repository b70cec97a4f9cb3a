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

__all__ = ["build_parser", "console_main", "main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318


def build_parser(prog: str = "aither server") -> argparse.ArgumentParser:
    from ._runner import default_db_path

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the local aither server: OTLP ingestion, API keys, the management and query API.",
        epilog=(
            "On a new database an admin API key is printed once. Set AITHER_BOOTSTRAP_KEY=aith_... to seed a "
            "known admin key instead."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--db", type=Path, default=None, help=f"SQLite database file (default {default_db_path()})")
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
        "--max-decompressed-mb",
        type=float,
        default=64.0,
        help="largest decompressed body, in MiB (default 64)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["server"]:
        args_list = args_list[1:]
    args = build_parser().parse_args(args_list)

    import uvicorn

    from ._app import create_app
    from ._migrations import SchemaTooNew
    from ._runner import default_db_path
    from ._store import Store

    db = (args.db or default_db_path()).expanduser()
    bootstrap = os.environ.get("AITHER_BOOTSTRAP_KEY") or None
    try:
        store = Store(db)
        new_key = store.bootstrap(bootstrap)
    except (SchemaTooNew, ValueError, OSError) as exc:
        print(f"aither server: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # sqlite3.DatabaseError on a file that is not a database, etc.
        print(f"aither server: cannot open {db}: {exc}", file=sys.stderr)
        return 2
    if new_key is not None:
        # Printed once, on purpose: only its hash is stored, so this is the one chance to copy it.
        print(
            "A new database: here is its admin API key. It is shown once and stored only as a hash.\n\n"
            f"    export AITHER_API_KEY={new_key}\n",
            flush=True,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"aither server on http://{host}:{args.port}  (database: {db})", flush=True)
    print(f"    export AITHER_BASE_URL=http://{host}:{args.port}", flush=True)
    app = create_app(
        store,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_decompressed_bytes=int(args.max_decompressed_mb * 1024 * 1024),
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0


def console_main() -> None:
    sys.exit(main())
