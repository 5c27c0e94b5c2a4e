"""Races through the HTTP API on PostgreSQL: real threads, real connections, one barrier.

Concurrent OTP guesses are covered in tests/otp/test_concurrency.py; the service-level row-lock
tests of patients and documents live with their apps. These drive the whole request path.
"""

from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from pms.throttles import AuthRateThrottle
from tests.reliability.concurrency import at_once

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("postgres_only"),
]

REFRESH_URL = "/api/auth/token/refresh/"


@pytest.fixture
def no_auth_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-IP credential throttle is not under test here: every racer shares one IP."""
    monkeypatch.setattr(AuthRateThrottle, "rate", "10000/min", raising=False)


def test_twenty_concurrent_refreshes_of_one_token_rotate_it_exactly_once(
    no_auth_throttle: None, clinician: User
) -> None:
    refresh = RefreshToken.for_user(clinician)

    def use(_: int) -> tuple[int, Any]:
        response = APIClient().post(REFRESH_URL, {"refresh": str(refresh)})
        return response.status_code, response.json()

    results = at_once(20, use)

    winners = [body for status, body in results if status == 200]
    losers = [body for status, body in results if status != 200]
    assert len(winners) == 1
    assert [status for status, _ in results].count(401) == 19
    assert {body["error"]["code"] for body in losers} == {"token_not_valid"}
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).count() == 1
    # The winner's new refresh token is the one live successor: it rotates once more.
    again = APIClient().post(REFRESH_URL, {"refresh": winners[0]["refresh"]})
    assert again.status_code == 200
