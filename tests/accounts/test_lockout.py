"""Sign-in lockouts: failures lock one (username, address) pair for a while, and the account as a
whole only past the NIST bound of consecutive failures; a stranger cannot lock a user out."""

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import SignInFailureStreak, User
from audit.models import AuditEvent
from tests.factories import TEST_PASSWORD, OTPCodeFactory

TOKEN_URL = "/api/auth/token/"
NEW_PASSWORD = "quiet-meadow-lantern-42"


def sign_in(address: str, password: str = TEST_PASSWORD, username: str = "carol", **extra: Any):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )


def fail(address: str, times: int = 1) -> list[int]:
    return [sign_in(address, password="wrong").status_code for _ in range(times)]


@pytest.fixture
def account_bound(settings: Any) -> int:
    """A small account bound, above the per-address limit (5) so one address cannot reach it."""
    settings.ACCOUNT_LOCKOUT_FAILURES = 8
    return 8


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere(clinician: User) -> None:
    assert fail("203.0.113.7", times=5) == [401] * 4 + [429]

    assert sign_in("198.51.100.20").status_code == 200


def test_the_locked_address_is_refused_even_with_the_right_password(
    clinician: User, settings: Any
) -> None:
    fail("203.0.113.7", times=5)

    locked = sign_in("203.0.113.7")

    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_a_forwarded_for_header_does_not_pick_a_new_address(clinician: User) -> None:
    """NUM_PROXIES is 0: the client address is REMOTE_ADDR, whatever X-Forwarded-For says."""
    statuses = [
        sign_in("203.0.113.7", password="wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(5)
    ]

    assert statuses == [401] * 4 + [429]


def test_the_short_lock_is_audited_without_the_password(clinician: User) -> None:
    fail("203.0.113.7", times=5)

    event = AuditEvent.objects.get(action="auth.lockout")
    assert event.actor_username == "carol"
    assert event.ip_address == "203.0.113.7"
    assert event.status_code == 429
    assert event.details == {"failures": 5}
    assert "wrong" not in str(event.details)


def test_the_account_locks_at_the_bound_from_every_address(
    clinician: User, account_bound: int
) -> None:
    statuses = [
        status for n in range(4) for status in fail(f"203.0.113.{n}", times=2)
    ]  # two failures from each of four addresses

    assert statuses == [401] * (account_bound - 1) + [429]
    for address in ("198.51.100.20", "192.0.2.1"):
        locked = sign_in(address)
        assert locked.status_code == 429
        assert locked.json()["error"]["code"] == "account_locked"
        assert "Retry-After" not in locked
    event = AuditEvent.objects.get(action="auth.account_lockout")
    assert (event.actor_username, event.details) == ("carol", {"failures": account_bound})
    assert "wrong" not in str(event.details)


def test_attempts_refused_by_the_short_lock_do_not_count_towards_the_account(
    clinician: User, account_bound: int
) -> None:
    assert fail("203.0.113.7", times=20) == [401] * 4 + [429] * 16

    assert SignInFailureStreak.objects.get(user=clinician).failures == 5
    assert sign_in("198.51.100.20").status_code == 200


def test_a_successful_sign_in_ends_the_streak(clinician: User, account_bound: int) -> None:
    fail("203.0.113.1", times=4)
    fail("203.0.113.2", times=3)
    assert sign_in("198.51.100.20").status_code == 200

    assert not SignInFailureStreak.objects.filter(user=clinician).exists()
    assert fail("203.0.113.3", times=4) == [401] * 4
    assert sign_in("198.51.100.21").status_code == 200


def test_a_successful_sign_in_resets_that_address_count(clinician: User) -> None:
    fail("203.0.113.7", times=4)
    assert sign_in("203.0.113.7").status_code == 200

    assert fail("203.0.113.7", times=4) == [401] * 4


def test_unknown_usernames_keep_no_streak(db: None, account_bound: int) -> None:
    for n in range(3):
        sign_in(f"203.0.113.{n}", password="wrong", username="nobody")

    assert not SignInFailureStreak.objects.exists()


def test_an_otp_password_reset_clears_both_locks(
    clinician: User, account_bound: int, api_client: APIClient
) -> None:
    fail("203.0.113.1", times=3)
    fail("203.0.113.2", times=5)  # this address is locked too
    assert sign_in("198.51.100.20").status_code == 429
    OTPCodeFactory.create(user=clinician, purpose="password_reset", code="123456")

    reset = api_client.post(
        "/api/otp/verify/",
        {
            "email": clinician.email,
            "code": "123456",
            "purpose": "password_reset",
            "new_password": NEW_PASSWORD,
        },
    )

    assert reset.status_code == 200
    assert sign_in("203.0.113.2", password=NEW_PASSWORD).status_code == 200
    assert sign_in("198.51.100.20", password=NEW_PASSWORD).status_code == 200


def test_an_operator_can_clear_the_account_lock(clinician: User, account_bound: int) -> None:
    for n in range(4):
        fail(f"203.0.113.{n}", times=2)
    assert sign_in("198.51.100.20").status_code == 429

    call_command("axes_reset_username", "carol")

    assert sign_in("198.51.100.20").status_code == 200


def test_a_very_long_username_is_a_validation_error(db: None) -> None:
    response = sign_in("203.0.113.7", username="u" * 100_000)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "username" in response.json()["error"]["details"]


def test_a_very_long_password_is_a_validation_error(clinician: User) -> None:
    response = sign_in("203.0.113.7", password="p" * 100_000)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "password" in response.json()["error"]["details"]


def test_the_admin_sign_in_form_shares_the_locks(clinician: User, settings: Any) -> None:
    settings.ACCOUNT_LOCKOUT_FAILURES = 3
    admin = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(3):
        admin.post("/admin/login/", {"username": "carol", "password": "wrong"})

    assert AuditEvent.objects.filter(action="auth.account_lockout", path="/admin/login/").exists()
    assert sign_in("198.51.100.20").status_code == 429
