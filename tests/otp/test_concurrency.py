"""Races that only a real database with real concurrent connections can show (PostgreSQL)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from otp.models import OTPAddressLimit, OTPCode
from otp.services import address_hmac
from tests.concurrency import at_once
from tests.factories import OTPCodeFactory
from tests.otp.conftest import GENERATE_URL, VERIFY_URL

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_wrong_guesses_never_get_more_than_five_tries(
    postgres_only: None, clinician: User
) -> None:
    OTPCodeFactory.create(user=clinician, code="123456")

    def guess(index: int) -> int:
        body = {"email": clinician.email, "code": f"{900000 + index}", "purpose": "login"}
        response = APIClient().post(VERIFY_URL, body)
        assert response.json()["error"]["code"] == "invalid_code"
        return response.status_code

    statuses = at_once(12, guess)

    assert statuses == [400] * 12
    assert OTPCode.objects.get(user=clinician).attempts == 5
    # The code is dead: the right one no longer works either.
    late = APIClient().post(VERIFY_URL, {"email": clinician.email, "code": "123456"})
    assert late.json()["error"]["code"] == "invalid_code"


def test_concurrent_uses_of_the_right_code_sign_in_once(
    postgres_only: None, clinician: User
) -> None:
    OTPCodeFactory.create(user=clinician, code="123456")

    def use(_: int) -> int:
        body = {"email": clinician.email, "code": "123456", "purpose": "login"}
        return APIClient().post(VERIFY_URL, body).status_code

    statuses = at_once(5, use)

    assert sorted(statuses) == [200, 400, 400, 400, 400]


@pytest.mark.parametrize("earlier_request", [False, True])
def test_concurrent_requests_for_one_address_send_one_code(
    postgres_only: None, clinician: User, earlier_request: bool
) -> None:
    if earlier_request:  # the counter row exists, so the race is on its UPDATE, not its INSERT
        two_minutes_ago = timezone.now() - timedelta(minutes=2)
        OTPAddressLimit.objects.create(
            address_hmac=address_hmac(clinician.email),
            last_requested_at=two_minutes_ago,
            window_started_at=two_minutes_ago,
            requests_in_window=1,
        )

    def request(_: int) -> int:
        return APIClient().post(GENERATE_URL, {"email": clinician.email}).status_code

    statuses = at_once(8, request)

    assert sorted(statuses) == [202] + [429] * 7
    assert len(mail.outbox) == 1
    assert OTPCode.objects.filter(user=clinician).count() == 1
    assert OTPAddressLimit.objects.get().requests_in_window == (2 if earlier_request else 1)
