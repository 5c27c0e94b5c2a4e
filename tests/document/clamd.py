"""A real clamd for the scan tests: Debian's `clamav-daemon`, on a loopback port, with a
signature database the tests write (the EICAR test signature only: no download, no internet).

clamd with one signature starts in about a second. Where clamd is not installed the scan tests
skip, except on CI (`CI=true`), where `.ci/run` installs it: there a missing clamd fails them,
so a green CI run has really scanned.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

# Built from two halves so that this source file itself is not the EICAR test file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Eicar-Test-Signature"
_START_SECONDS = 30


def clamd_binary() -> str | None:
    return shutil.which("clamd") or next(
        (path for path in ("/usr/sbin/clamd", "/usr/local/sbin/clamd") if Path(path).exists()),
        None,
    )


def require_clamd() -> str:
    binary = clamd_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("clamd is missing on CI: the scan tests must run there (.ci/run)")
        pytest.skip("clamd is not installed (Debian: apt-get install clamav-daemon)")
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Clamd:
    """One clamd process in the foreground; `stop()` and `start()` again on the same port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.port = _free_port()
        database = directory / "db"
        database.mkdir()
        # An extended (.ndb) signature: the EICAR bytes anywhere in any file.
        (database / "eicar.ndb").write_text(f"{EICAR_SIGNATURE}:0:*:{EICAR.hex()}\n")
        self.log = directory / "clamd.log"
        self.config = directory / "clamd.conf"
        self.config.write_text(
            "Foreground yes\n"
            f"TCPSocket {self.port}\n"
            "TCPAddr 127.0.0.1\n"
            f"DatabaseDirectory {database}\n"
            f"LogFile {self.log}\n"
            "SelfCheck 0\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"nPING\n")
                return connection.recv(16).strip() == b"PONG"
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [self.binary, "--config-file", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_SECONDS
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text() if self.log.exists() else ""
                self.stop()
                pytest.fail(f"clamd did not start:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
