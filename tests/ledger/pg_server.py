"""A real, throw-away PostgreSQL server for the tests: initdb and pg_ctl on a temporary folder.

The server runs as an unprivileged user (initdb refuses root, and the tests run as root in CI):
``nobody`` through runuser when the tests are root, the current user otherwise. It listens on
127.0.0.1 at a free port and on a unix socket in its own folder; the tests connect through the
socket. Durability is switched off (fsync, full-page writes): the data is thrown away at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg


def find_pg_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's /usr/lib/postgresql/N/bin (newest), or PATH."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary folder; :meth:`start`, :meth:`stop`, :meth:`database`."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        """``durable``: commits survive an immediate stop (synchronous commit on), for the tests
        that stop the server under a running audit."""
        self.bindir = bindir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="preserve-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.superuser = "preserve_test"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root: the folder goes to nobody, who runs them
            shutil.chown(self.root, "nobody", "nogroup")
            self._as_user = ["runuser", "-u", "nobody", "--"]
        # the socket lives here: any local user may reach it (the tests drop privileges at times)
        os.chmod(self.root, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self._as_user, str(self.bindir / tool), *args], capture_output=True,
                                text=True, timeout=120, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        if not self.durable:
            options += " -c synchronous_commit=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self._as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True, timeout=120, cwd=self.root)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` over the unix socket (no password: trust on a private socket)."""
        return f"postgresql://{self.superuser}@/{dbname}?host={self.root}&port={self.port}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def database(self, prefix: str = "ledger") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.admin() as conn:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
                return self.url(name)
            except psycopg.errors.ObjectInUse:  # another CREATE DATABASE holds template0 for a moment
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
