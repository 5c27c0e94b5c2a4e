from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection

from accounts.models import User
from otp.models import OTPAddressLimit, OTPCode, OTPDelivery
from otp.services import code_hmac
from pms.throttles import AuthRateThrottle
from tests.factories import UserFactory
from tests.otp.conftest import GENERATE_URL, last_code

START = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
UNKNOWN = "nobody@example.com"


@pytest.fixture
def frozen(time_machine: Any) -> Any:
    time_machine.move_to(START, tick=False)
    return time_machine


def test_a_known_email_gets_202_and_a_code_by_email(clinician: User, request_code, frozen) -> None:
    response = request_code(clinician.email, "login")

    assert response.status_code == 202
    assert response.json() == {
        "detail": "If an active account has this email address, a code has been sent to it.",
        "next_request_at": "2030-01-15T09:01:00Z",
        "retry_after_seconds": 60,
        "expires_in_seconds": 600,
    }
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [clinician.email]
    otp = OTPCode.objects.get(user=clinician)
    assert otp.purpose == "login"
    assert otp.attempts == 0
    assert otp.consumed_at is None
    assert otp.expires_at == START + timedelta(minutes=10)
    assert len(last_code()) == 6
    assert last_code().isdigit()


def test_known_and_unknown_emails_get_identical_answers(
    clinician: User, request_code, frozen
) -> None:
    known = request_code(clinician.email, "password_reset")
    unknown = request_code(UNKNOWN, "password_reset")

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    different_headers = {"X-Request-ID"}
    assert {k: v for k, v in known.items() if k not in different_headers} == {
        k: v for k, v in unknown.items() if k not in different_headers
    }
    assert len(mail.outbox) == 1  # only the known address got one


def test_an_unknown_email_gets_no_email_and_no_code(db: None, request_code) -> None:
    response = request_code(UNKNOWN)

    assert response.status_code == 202
    assert mail.outbox == []
    assert not OTPCode.objects.exists()
    # The request did what a known address costs: a delivery, for nobody, went to the task.
    assert list(OTPDelivery.objects.values_list("user", "attempts")) == [(None, 0)]


def test_an_inactive_account_gets_no_code(organization, request_code) -> None:
    inactive = UserFactory.create(username="dave", organization=organization, is_active=False)

    response = request_code(inactive.email)

    assert response.status_code == 202
    assert mail.outbox == []
    assert not OTPCode.objects.exists()


def test_the_email_is_matched_whatever_its_case(clinician: User, request_code) -> None:
    response = request_code(" CAROL@Example.COM ", "verify_email")

    assert response.status_code == 202
    assert mail.outbox[0].to == [clinician.email]
    assert OTPCode.objects.get(user=clinician).purpose == "verify_email"


def test_the_purpose_defaults_to_login(clinician: User, request_code) -> None:
    request_code(clinician.email)

    assert OTPCode.objects.get(user=clinician).purpose == "login"
    assert mail.outbox[0].subject == "Your sign-in code"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "carol@example.com", "purpose": "become_admin"}, "purpose"),
        ({"email": "not-an-email"}, "email"),
        ({}, "email"),
    ],
)
def test_bad_input_is_a_validation_error(clinician: User, api_client, body, field) -> None:
    response = api_client.post(GENERATE_URL, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["details"]
    assert not OTPCode.objects.exists()


def test_the_database_holds_no_plaintext_code(clinician: User, request_code) -> None:
    request_code(clinician.email)
    code = last_code()

    otp = OTPCode.objects.get(user=clinician)
    assert otp.code_hmac == code_hmac(user_id=clinician.pk, purpose="login", code=code)
    assert len(otp.code_hmac) == 64
    with connection.cursor() as cursor:
        for table in (
            OTPCode._meta.db_table,
            OTPAddressLimit._meta.db_table,
            OTPDelivery._meta.db_table,
        ):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - table names from models
            rows = cursor.fetchall()
            assert rows
            assert code not in repr(rows)
            # Nor the address: the rate counters keep only its HMAC.
            assert clinician.email not in repr(rows)


def test_neither_code_nor_address_is_logged(clinician: User, request_code, verify, caplog) -> None:
    caplog.set_level("DEBUG")

    request_code(clinician.email)
    code = last_code()
    verify(clinician.email, "000000" if code != "000000" else "111111")
    verify(clinician.email, code)

    assert "one-time code issued" in caplog.text
    assert "one-time code rejected" in caplog.text
    assert code not in caplog.text
    assert clinician.email not in caplog.text


def _run_sequence(request_code, frozen, email: str) -> list[tuple[int, str | None]]:
    """Requests at 0 s, 30 s, 61 s: (status, Retry-After) of each."""
    outcomes = []
    for offset in (0, 30, 61):
        frozen.move_to(START + timedelta(seconds=offset), tick=False)
        response = request_code(email)
        outcomes.append((response.status_code, response.get("Retry-After")))
    return outcomes


def test_the_cooldown_answers_429_in_the_envelope_with_retry_after(
    clinician: User, request_code, frozen
) -> None:
    request_code(clinician.email)
    frozen.shift(20)

    response = request_code(clinician.email)

    assert response.status_code == 429
    assert response["Retry-After"] == "40"
    error = response.json()["error"]
    assert error["status_code"] == 429
    assert error["code"] == "throttled"
    assert clinician.email not in response.content.decode()
    assert len(mail.outbox) == 1  # the refused request sent nothing


def test_the_cooldown_is_the_same_for_known_and_unknown_emails(
    clinician: User, request_code, frozen
) -> None:
    known = _run_sequence(request_code, frozen, clinician.email)
    unknown = _run_sequence(request_code, frozen, UNKNOWN)

    assert known == unknown == [(202, None), (429, "30"), (202, None)]
    assert len(mail.outbox) == 2


def _hourly_sequence(request_code, frozen, email: str) -> list[tuple[int, str | None, Any]]:
    """Six requests 61 s apart, then one just after the hour of the first."""
    outcomes = []
    for index in range(6):
        frozen.move_to(START + timedelta(seconds=61 * index), tick=False)
        response = request_code(email)
        outcomes.append(
            (
                response.status_code,
                response.get("Retry-After"),
                response.json().get("next_request_at"),
            )
        )
    frozen.move_to(START + timedelta(hours=1), tick=False)
    response = request_code(email)
    outcomes.append((response.status_code, None, None))
    return outcomes


def test_the_hourly_cap_answers_429_until_the_hour_is_over_for_any_email(
    clinician: User, request_code, frozen
) -> None:
    known = _hourly_sequence(request_code, frozen, clinician.email)
    unknown = _hourly_sequence(request_code, frozen, UNKNOWN)

    assert known == unknown
    assert [status for status, _, _ in known] == [202, 202, 202, 202, 202, 429, 202]
    # The fifth answer already says the next code waits for the end of the hour.
    assert known[4][2] == "2030-01-15T10:00:00Z"
    # The sixth request comes 305 s after the first: 3295 s remain of the hour.
    assert known[5][1] == "3295"
    assert len(mail.outbox) == 6  # five in the first hour, one in the next, all to carol


def test_a_stale_bearer_header_does_not_block_requesting_a_code(
    clinician: User, api_client, request_code
) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = request_code(clinician.email)

    assert response.status_code == 202
    assert len(mail.outbox) == 1


def test_the_per_ip_auth_throttle_applies_across_addresses(
    db: None, api_client, monkeypatch
) -> None:
    monkeypatch.setattr(AuthRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})

    statuses = [
        api_client.post(GENERATE_URL, {"email": f"someone{n}@example.com"}).status_code
        for n in range(4)
    ]

    assert statuses == [202, 202, 202, 429]
