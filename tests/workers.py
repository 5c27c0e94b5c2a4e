"""Real Celery workers for the tests that need one, against the Redis broker of the run.

The test settings run tasks eagerly, so no other test needs a worker. These tests publish to
the configured broker (`CELERY_BROKER_URL`, else `REDIS_URL`; give it a Redis database of its
own, since the cache fixture flushes the cache's). They skip when the run has no broker (the
SQLite run on a bare machine) and, outside CI, when Redis is unreachable; on CI an unreachable
broker fails them, so a green Redis run has really run them.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing import tasks as _celery_ping  # noqa: F401 - registers celery.ping
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from pms.celery import app
from tests.reliability.servers import running_database_url

BASE_DIR = Path(__file__).resolve().parents[1]


def require_broker() -> str:
    url: str = settings.CELERY_BROKER_URL
    if not url:
        pytest.skip("no broker configured (CELERY_BROKER_URL or REDIS_URL): tasks run eagerly")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"the worker tests must run on CI, but the broker is unreachable: {url}")
        pytest.skip(f"the broker is unreachable: {url}")
    return url


def purge_queue() -> None:
    """Drop tasks left in the broker by an earlier, interrupted run."""
    with app.connection_for_write() as conn:
        app.control.purge(connection=conn)


@contextmanager
def queued_tasks() -> Iterator[None]:
    """Tasks go to the broker (as in production) instead of running in the test's process."""
    require_broker()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    purge_queue()
    try:
        yield
    finally:
        purge_queue()
        app.conf.task_always_eager = eager


@contextmanager
def thread_worker() -> Iterator[None]:
    """A worker in a thread of this process, on the real broker (Celery's testing worker)."""
    with (
        queued_tasks(),
        start_worker(app, pool="solo", perform_ping_check=True, loglevel="WARNING"),
    ):
        yield


def wait_for(condition: Callable[[], Any], *, timeout: float = 15, what: str = "it") -> Any:
    """Poll until `condition()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class WorkerProcess:
    """`celery -A pms worker` in a process of its own, with production settings (base), on this
    run's test database and broker."""

    def __init__(self, **env: str) -> None:
        if connection.vendor != "postgresql":
            pytest.skip("a worker process needs a database it can share: PostgreSQL")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pms",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            cwd=BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "pms.settings.base",
                "DATABASE_URL": running_database_url(),
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
                "SECRET_KEY": settings.SECRET_KEY,
                "LOG_LEVEL": "INFO",
                **env,
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # A group of its own: the test kills the worker and its pool processes together.
            start_new_session=True,
        )

    def pool_processes(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill(self) -> None:
        """SIGKILL the whole worker at once, as a crash or an OOM kill of the machine would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> str:
        """A warm shutdown; returns what the worker logged."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.seek(0)
        output = self._log.read().decode(errors="replace")
        self._log.close()
        return output
