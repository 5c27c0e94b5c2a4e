"""Two app instances sharing PostgreSQL and Redis enforce one lockout and one throttle."""

import os

import pytest
import requests

from tests.factories import TEST_PASSWORD, UserFactory
from tests.reliability.servers import free_port, gunicorn, running_database_url

pytestmark = [
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
    }
    with gunicorn(free_port(), **env) as first, gunicorn(free_port(), **env) as second:
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
