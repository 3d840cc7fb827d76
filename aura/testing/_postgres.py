"""A throw-away PostgreSQL server, for tests of missions on a PostgreSQL store.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl`` from the local
PostgreSQL install (``pg_config --bindir``, else the usual Debian paths) on a
unix socket in a new temporary directory, listening on no TCP port; ``.url``
is its address, ``.remove()`` deletes it. As root (CI containers) the server
runs as the ``postgres`` user, since PostgreSQL refuses to run as root.
``fsync`` is off unless asked for: tests kill clients, not the machine
(benchmarks start it with ``fsync=True``). ``fresh_schema(url)`` yields a
schema name no store uses yet and drops it afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DSN_ENV = "AURA_TEST_PG_DSN"
"""Tests point at an existing server with this variable instead."""


def bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin"):
        for hit in sorted(glob.glob(pattern), reverse=True):
            if (Path(hit) / "initdb").exists():
                return Path(hit)
    raise RuntimeError(
        "no PostgreSQL server install found (initdb): install it (Debian: apt-get install "
        f"postgresql) or point the tests at a server with {DSN_ENV}=postgresql://..."
    )


class PostgresServer:
    port: int = 5432
    fsync: bool = False

    def __init__(self, root: Path, bin_dir: Path, as_user: list[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.bin = bin_dir
        self.as_user = as_user
        self.url = f"postgresql://aura@/postgres?host={root}"

    @classmethod
    def start(
        cls, root: Path | None = None, *, fsync: bool = False, port: int = 5432
    ) -> PostgresServer:
        """Start a new cluster in ``root`` (a new directory under the system
        temp dir if None: the server's user must be able to reach it)."""
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="aura-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        server = cls(root, bindir(), as_user)
        server.port, server.fsync = port, fsync
        server._run(
            "initdb", "-D", str(server.data), "-A", "trust", "-U", "aura", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        server.start_again()
        return server

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self.as_user, str(self.bin / tool), *args]
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}\n{done.stderr}")

    def start_again(self) -> None:
        """Start the (stopped) server; its output goes to ``root/log``."""
        opts = (
            f"-k {self.root} -c listen_addresses='' -p {self.port} "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=200 "
            "-c shared_buffers=128MB"
        )
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", log, "-w", "start")

    def restart(self) -> None:
        """Stop (fast: connections are dropped) and start again on the same socket."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start_again()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop if running and delete the cluster."""
        done = subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A schema name no one uses yet; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
