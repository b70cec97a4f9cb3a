"""``python -m aither_server [--host ...] [--port ...] [--db ...]``: the same as ``aither server``."""

from __future__ import annotations

import sys

from aither_server.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
