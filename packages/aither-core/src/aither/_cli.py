"""The ``aither`` command: ``aither server`` and ``aither demo`` (from aither-server), ``aither version``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main"]

_USAGE = """usage: aither <command> [options]

commands:
  server    run the local aither server (needs aither-server)
  demo      start a local server, log predictions and labels of a model, print its metrics (needs aither-server)
  version   print the aither-core version
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "version":
        print(__version__)
        return 0
    if command in ("server", "demo"):
        try:
            if command == "server":
                from aither_server.cli import main as run
            else:
                from aither_server.demo import main as run
        except ImportError as exc:
            if exc.name is not None and exc.name.startswith("aither_server"):
                from ._install import install_command

                print(
                    f"aither: this command needs the local server: {install_command('aither-server')}", file=sys.stderr
                )
                return 2
            raise
        return int(run(rest))
    print(f"aither: unknown command {command!r}\n\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
