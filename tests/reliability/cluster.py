"""A throwaway PostgreSQL server for tests that stop and start the database.

The shared PostgreSQL of the test run must stay up (other tests use it), so an outage test runs
its own server: `initdb` into a temporary directory, `pg_ctl` on a free loopback port. PostgreSQL
refuses to run as root, so under root the binaries run as the `postgres` OS user.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from tests.reliability.servers import BASE_DIR, free_port

_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def postgres_bin_dir() -> Path | None:
    """The newest installed server's bin directory (Debian layout), or None."""
    candidates = [path for path in Path("/").glob(_BIN_GLOB.lstrip("/")) if path.is_dir()]
    candidates = [path for path in candidates if (path / "initdb").exists()]
    if not candidates:
        return None
    return max(candidates, key=lambda path: float(path.parent.name))


def missing_requirement() -> str | None:
    """Why a throwaway server cannot run here, or None when it can."""
    if postgres_bin_dir() is None:
        return f"no PostgreSQL server binaries under {_BIN_GLOB}"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres OS user"
    return None


class ThrowawayPostgres:
    """One PostgreSQL server in a temporary directory; `start()`/`stop()` may repeat."""

    def __init__(self, root: Path) -> None:
        bin_dir = postgres_bin_dir()
        assert bin_dir is not None, missing_requirement()
        self.bin_dir = bin_dir
        self.root = root
        self.data_dir = root / "data"
        self.port = free_port()

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603

    def init(self) -> None:
        # No fsync anywhere: the data is thrown away, speed is what matters.
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        """Starts the server and returns once it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", "30",
            "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip

    def stop(self) -> None:
        """Stops the server the way an operator's restart does: sessions are cut at once."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Creates an empty database; returns its URL."""
        admin = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        try:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        return self.url(name)


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A running throwaway server, stopped and deleted when the block ends."""
    root = Path(tempfile.mkdtemp(prefix="pms-pg-"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
    server = ThrowawayPostgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        # Already stopped when the test stopped it last, or it never started.
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def manage(database_url: str, *args: str, **env: str) -> None:
    """Runs `manage.py <args>` against the given database in a fresh process."""
    subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**os.environ, "DATABASE_URL": database_url, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
