"""A throwaway PostgreSQL cluster for the tests: Debian's binaries, a temporary directory, a free local port.

initdb refuses to run as root, so as root the cluster's commands run as the unprivileged ``postgres`` user.
The cluster listens on 127.0.0.1 only, trusts local connections, and skips fsync (a test's data is thrown
away; benchmarks ask for a durable one). Each test gets a fresh database cloned from a migrated template.
No PostgreSQL on the machine is an error, not a skip: ``scripts/bootstrap.sh`` installs it.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from processes import free_port

__all__ = ["Cluster"]

_TEMPLATE = "aither_template"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the server's tests run on"
            " PostgreSQL too; run scripts/bootstrap.sh (it installs Debian's postgresql package)"
        )
    return Path(found[-1]).parent


class Cluster:
    """One running cluster; :meth:`create_database` hands out fresh databases."""

    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: PostgreSQL's defaults (fsync, synchronous commits), for benchmarks; else no fsync."""
        self._bin = _bin_dir()
        self._root = Path(tempfile.mkdtemp(prefix="aither-pg-"))
        self._data = self._root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self._names = itertools.count()
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c max_connections=400"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l", str(self._root / "log"), "-w", "start")
        self._make_template()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_user, str(self._bin / tool), *args], check=True, stdout=subprocess.DEVNULL, cwd=self._root
        )

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def _make_template(self) -> None:
        from aither_server.store.migrations import migrate

        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {_TEMPLATE}")
        migrate(self.url(_TEMPLATE))

    def create_database(self) -> str:
        """A fresh, migrated database's URL."""
        name = f"aither_test_{next(self._names)}"
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
