"""Real app servers for the reliability tests: gunicorn processes on loopback ports."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_database_url() -> str:
    """The URL of the database the test run is using (pytest-django's test database)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def gunicorn(port: int, **env: str) -> Iterator[str]:
    """Runs `gunicorn pms.wsgi` on 127.0.0.1:port until the block ends; yields its base URL.

    The server's stderr (its logs) goes to an anonymous temporary file, shown if it fails to
    start: a pipe nobody reads would fill up and block the server as soon as it logs a lot (a
    database outage does).
    """
    log_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process_env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "reliability-tests-" + "k" * 48,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-m",
            "gunicorn",
            "pms.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--timeout",
            "30",
        ],
        cwd=BASE_DIR,
        env=process_env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or the worker is still importing Django
                # on a busy machine: keep waiting until the deadline.
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log_file.seek(0)
                raise RuntimeError(f"gunicorn did not start: {log_file.read().decode()}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
