"""A database outage under traffic: fast 503s in the envelope, then recovery without a restart.

The app runs in granian against a PostgreSQL server of its own (tests/reliability/cluster.py),
which the test stops and starts while client threads keep calling the API.
"""

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.db import connection

from tests.reliability.cluster import (
    ThrowawayPostgres,
    manage,
    missing_requirement,
    throwaway_postgres,
)
from tests.reliability.servers import app_server, free_port

# Seconds a connection attempt may take before the app gives up (the DB_CONNECT_TIMEOUT setting).
CONNECT_TIMEOUT = 2
# The contract: serving again within this many seconds of the database accepting connections.
RECOVERY_SECONDS = 5
PASSWORD = "outage-drill-password-7"  # noqa: S105 - a throwaway database's only account

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    status: int
    body: str
    content_type: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class Traffic:
    """Client threads calling one URL back to back until stopped, recording every answer."""

    def __init__(self, url: str, token: str, threads: int) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                # A hang would show up as a Timeout here and fail the test.
                response = session.get(self.url, headers=self.headers, timeout=15)
                call = Call(
                    started,
                    time.monotonic(),
                    response.status_code,
                    response.text,
                    response.headers.get("Content-Type", ""),
                )
                with self._lock:
                    self.calls.append(call)
                time.sleep(0.02)

    def __enter__(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def first_success_since(self, start: float, within: float) -> float | None:
        """When the first call sent after `start` succeeded, waiting at most `within` seconds."""
        deadline = start + within
        while True:
            successes = [call.ended for call in self.between(start, deadline) if call.status == 200]
            if successes or time.monotonic() > deadline:
                return min(successes, default=None)
            time.sleep(0.05)

    def between(self, start: float, end: float) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.started >= start and call.ended <= end]


@pytest.fixture
def app_on_its_own_database() -> Iterator[tuple[str, ThrowawayPostgres]]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    if reason := missing_requirement():
        pytest.skip(reason)
    with throwaway_postgres() as server:
        database_url = server.create_database("pms_outage")
        manage(database_url, "migrate", "--noinput")
        manage(
            database_url,
            "createsuperuser",
            "--noinput",
            "--username",
            "operator",
            "--email",
            "operator@example.com",
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        )
        env = {
            "DATABASE_URL": database_url,
            "DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            # The drill sends hundreds of requests a minute; the user throttle is not under test.
            "THROTTLE_USER": "100000/min",
        }
        with app_server(free_port(), **env) as base_url:
            yield base_url, server


def assert_service_unavailable(call: Call) -> None:
    assert call.status == 503, call
    assert call.content_type == "application/json", call
    assert "Traceback" not in call.body
    assert '"code":"service_unavailable"' in call.body.replace(" ", ""), call.body


def test_a_database_outage_answers_503_fast_and_the_app_recovers_without_a_restart(
    app_on_its_own_database,
):
    base_url, server = app_on_its_own_database
    token = requests.post(
        f"{base_url}/api/auth/token/",
        json={"username": "operator", "password": PASSWORD},
        timeout=10,
    ).json()["access"]
    # A read that needs the database (the caller alone would come from the cache).
    patients_url = f"{base_url}/api/patient/patients/"

    with Traffic(patients_url, token, threads=4) as traffic:
        time.sleep(1)
        stopping = time.monotonic()
        server.stop()
        down = time.monotonic()
        time.sleep(1.5)
        readiness = requests.get(f"{base_url}/readyz", timeout=CONNECT_TIMEOUT + 5)
        starting = time.monotonic()
        server.start()
        accepting = time.monotonic()
        first_success = traffic.first_success_since(accepting, within=RECOVERY_SECONDS + 1)
        # Long enough for a few dozen more calls, all of which must succeed.
        time.sleep(1)
        end = time.monotonic()

    # Before the outage everything worked.
    before = traffic.between(0, stopping)
    assert before
    assert {call.status for call in before} == {200}

    # During the outage: only 503s in the envelope, each answered well within the connect
    # timeout (a refused connection fails at once; nothing waits for a dead server).
    during = traffic.between(down, starting)
    assert len(during) >= 8
    for call in during:
        assert_service_unavailable(call)
        assert call.seconds < CONNECT_TIMEOUT + 1, call

    assert readiness.status_code == 503
    assert readiness.json()["error"]["details"] == {"database": ["unavailable"]}

    # Around the stop and the start: the request either worked or was a clean 503.
    for call in traffic.between(0, end):
        if call.status != 200:
            assert_service_unavailable(call)

    # Serving again within RECOVERY_SECONDS of the database accepting connections, with the
    # same server process: from the first success on, every request sent succeeds.
    assert first_success is not None, "no request succeeded after the database came back"
    assert first_success - accepting < RECOVERY_SECONDS
    after = traffic.between(first_success, end)
    assert len(after) >= 8
    assert {call.status for call in after} == {200}
    assert requests.get(f"{base_url}/readyz", timeout=5).status_code == 200


@pytest.fixture
def silent_database_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word: a hung database server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_database_that_never_answers_costs_at_most_the_connect_timeout(silent_database_port):
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{silent_database_port}/pms",
        "DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    }
    calls = [
        ("GET", "/readyz", None),
        ("POST", "/api/auth/token/", {"username": "operator", "password": PASSWORD}),
    ]
    with app_server(free_port(), **env) as base_url:

        def timed(method: str, path: str, body: Any) -> tuple[requests.Response, float]:
            started = time.monotonic()
            response = requests.request(method, base_url + path, json=body, timeout=30)
            return response, time.monotonic() - started

        # At once, on two of the server's threads: each waits on its own connection attempt.
        with ThreadPoolExecutor(len(calls)) as pool:
            answers = list(pool.map(timed, *zip(*calls, strict=True)))

    for (_, path, _), (response, seconds) in zip(calls, answers, strict=True):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        # Bounded by the connect timeout (twice for the token: the view and its audit
        # record each try once), not by any server timeout.
        assert seconds < 2 * CONNECT_TIMEOUT + 1.5, (path, seconds)
