"""Real app servers for the reliability tests: the deployment's HTTP server (granian, as
bench/servers.py starts it) on loopback ports."""

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from django.db import connection

from bench.servers import SERVER as DEPLOYED
from bench.servers import Server
from bench.servers import free_port as free_port  # the tests take it from here

BASE_DIR = Path(__file__).resolve().parents[2]
SERVER = Server(DEPLOYED, workers=1, threads=4)


def running_database_url() -> str:
    """The URL of the database the test run is using (pytest-django's test database)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def app_server(port: int, **env: str) -> Iterator[str]:
    """Serves `pms.wsgi` on 127.0.0.1:port until the block ends; yields its base URL."""
    with app_servers(port, **env) as (base_url,):
        yield base_url


@contextmanager
def app_servers(*ports: int, **env: str) -> Iterator[list[str]]:
    """One server of `pms.wsgi` (one process, four threads) per port, started at once, until the
    block ends; yields their base URLs once every one answers.

    Each server's stderr (its logs) goes to an anonymous temporary file, shown if it fails to
    start: a pipe nobody reads would fill up and block the server as soon as it logs a lot (a
    database outage does).
    """
    process_env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "reliability-tests-" + "k" * 48,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    servers: list[tuple[str, subprocess.Popen[bytes], Any]] = []
    try:
        for port in ports:
            log_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                SERVER.command("pms.wsgi:application", port, Path(os.devnull)),
                cwd=BASE_DIR,
                env=process_env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
            servers.append((f"http://127.0.0.1:{port}", process, log_file))
        deadline = time.monotonic() + 60
        for base_url, process, log_file in servers:
            _wait_until_serving(base_url, process, log_file, deadline)
        yield [base_url for base_url, _, _ in servers]
    finally:
        for _, process, _ in servers:
            process.send_signal(signal.SIGINT)  # the quick stop: no wait on keep-alive clients
        for _, process, log_file in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log_file.close()


def _wait_until_serving(
    base_url: str, process: subprocess.Popen[bytes], log_file: Any, deadline: float
) -> None:
    while True:
        try:
            if requests.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            # Not listening yet, or the worker is still importing Django
            # on a busy machine: keep waiting until the deadline.
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log_file.seek(0)
            raise RuntimeError(f"the server did not start: {log_file.read().decode()}")
        time.sleep(0.2)
