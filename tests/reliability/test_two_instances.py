"""Two app instances sharing PostgreSQL and Redis enforce one lockout, one throttle and one
concurrency limit per user."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests
from django.db import connection

from accounts.models import Role
from tests.factories import TEST_PASSWORD, PatientFactory, UserFactory
from tests.reliability.servers import app_servers, free_port, running_database_url

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (shared throttle state)"
    ),
]


@pytest.fixture
def two_instances(postgres_only):
    env = {
        "DATABASE_URL": running_database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "THROTTLE_AUTH": "8/min",
        "AXES_FAILURE_LIMIT": "3",
        "EXPENSIVE_CONCURRENCY_PER_USER": "2",
        # The slow requests below wait for a lock, which counts toward the timeout.
        "EXPENSIVE_STATEMENT_TIMEOUT_MS": "30000",
    }
    with app_servers(free_port(), free_port(), **env) as (first, second):
        yield first, second


def sign_in(base_url: str, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/auth/token/",
        json={"username": username, "password": password},
        timeout=10,
    )


def test_the_lockout_holds_across_both_instances(two_instances, organization):
    first, second = two_instances
    UserFactory.create(username="dora", organization=organization)

    # Three failures spread over both instances lock the account on both.
    assert sign_in(first, "dora", "wrong").status_code == 401
    assert sign_in(second, "dora", "wrong").status_code == 401
    assert sign_in(first, "dora", "wrong").status_code == 429

    for base_url in (first, second):
        locked = sign_in(base_url, "dora", TEST_PASSWORD)
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "account_locked"


def test_the_throttle_holds_across_both_instances(two_instances, organization):
    first, second = two_instances
    UserFactory.create(username="erin", organization=organization)

    statuses = [
        sign_in(base_url, "erin", TEST_PASSWORD).status_code for base_url in [first, second] * 5
    ]

    # 8 per minute per IP in all: the 9th and 10th requests are refused, whichever instance.
    assert statuses == [200] * 8 + [429, 429]
    refused = sign_in(first, "erin", TEST_PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "throttled"


def access_token(base_url: str, username: str) -> str:
    response = sign_in(base_url, username, TEST_PASSWORD)
    assert response.status_code == 200
    return str(response.json()["access"])


def waiting_for_a_lock(count: int) -> None:
    """Returns once `count` sessions of the test database wait for a lock (the requests in
    flight), or fails after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{count} requests never waited for the lock")


def test_the_per_user_concurrency_limit_holds_across_both_instances(two_instances, organization):
    first, second = two_instances
    UserFactory.create(username="fay", role=Role.CLINICIAN, organization=organization)
    UserFactory.create(username="gus", role=Role.CLINICIAN, organization=organization)
    PatientFactory.create(organization=organization, full_name="Maria Slow")
    fay, gus = access_token(first, "fay"), access_token(second, "gus")

    def search(base_url: str, token: str) -> requests.Response:
        return requests.get(
            f"{base_url}/api/patient/patients/search/",
            params={"q": "maria"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    # Searches read patient_patient: while this lock is held, each admitted one waits in
    # its query, holding its slot.
    db = connection.settings_dict
    blocker = psycopg2.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE patient_patient IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(max_workers=5) as pool:
            fays = [pool.submit(search, url, fay) for url in (first, second, first, second)]
            waiting_for_a_lock(2)
            # The two refused answer at once, before any slot frees (past 30 s: the asserts
            # below fail).
            deadline = time.monotonic() + 30
            while sum(future.done() for future in fays) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            others = pool.submit(search, second, gus)
            waiting_for_a_lock(3)
            blocker.rollback()
            responses = [future.result() for future in fays]
            other = others.result()
    finally:
        blocker.close()

    # Two of fay's four searches ran, on whichever instance; the other two were refused at once.
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 429, 429]
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "too_many_concurrent_requests"
            assert int(response.headers["Retry-After"]) > 0
    # Another user's search was not refused, though fay's slots were full.
    assert other.status_code == 200
    assert other.json()["results"][0]["full_name"] == "Maria Slow"
