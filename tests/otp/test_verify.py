from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from audit.models import AuditEvent
from otp.models import OTPCode
from tests.factories import TEST_PASSWORD, OTPCodeFactory, UserFactory
from tests.otp.conftest import INVALID_CODE, STRONG_PASSWORD, VERIFY_URL, error_of, last_code


def wrong(code: str) -> str:
    """A code of the same shape that is certainly not `code`."""
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_login_code_signs_the_user_in(clinician: User, request_code, verify) -> None:
    request_code(clinician.email, "login")

    response = verify(clinician.email, last_code(), "login")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["id"] == clinician.pk
    assert body["user"]["organization"]["slug"] == "northside"
    assert OTPCode.objects.get(user=clinician).consumed_at is not None
    # The pair is real: the access token authenticates, the refresh token rotates.
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.get("/api/accounts/me/").json()["username"] == "carol"
    refreshed = APIClient().post("/api/auth/token/refresh/", {"refresh": body["refresh"]})
    assert refreshed.status_code == 200


def test_a_verify_email_code_marks_the_email_verified(
    clinician: User, request_code, verify
) -> None:
    assert clinician.email_verified is False
    request_code(clinician.email, "verify_email")

    response = verify(clinician.email, last_code(), "verify_email")

    assert response.status_code == 200
    assert response.json() == {"verified": True}
    clinician.refresh_from_db()
    assert clinician.email_verified is True
    assert "verify your email address" in mail.outbox[0].body


def test_a_password_reset_code_sets_the_password_and_revokes_every_refresh_token(
    clinician: User, request_code, verify, api_client: APIClient
) -> None:
    old_refresh = [str(RefreshToken.for_user(clinician)) for _ in range(2)]
    other_user_token = RefreshToken.for_user(UserFactory.create(username="erin"))
    request_code(clinician.email, "password_reset")

    response = verify(clinician.email, last_code(), "password_reset", new_password=STRONG_PASSWORD)

    assert response.status_code == 200
    assert response.json() == {"password_reset": True, "refresh_tokens_revoked": True}
    clinician.refresh_from_db()
    assert clinician.check_password(STRONG_PASSWORD)
    assert not OutstandingToken.objects.filter(
        user=clinician, blacklistedtoken__isnull=True
    ).exists()
    for token in old_refresh:
        refused = api_client.post("/api/auth/token/refresh/", {"refresh": token})
        assert refused.status_code == 401
    # Someone else's sessions are untouched.
    assert not BlacklistedToken.objects.filter(token__jti=other_user_token["jti"]).exists()
    # Only the new password signs in.
    login = "/api/auth/token/"
    assert (
        api_client.post(login, {"username": "carol", "password": TEST_PASSWORD}).status_code == 401
    )
    assert (
        api_client.post(login, {"username": "carol", "password": STRONG_PASSWORD}).status_code
        == 200
    )


def test_a_weak_new_password_is_a_field_error_and_leaves_the_code_usable(
    clinician: User, request_code, verify
) -> None:
    request_code(clinician.email, "password_reset")
    code = last_code()

    weak = verify(clinician.email, code, "password_reset", new_password="12345")

    assert weak.status_code == 400
    error = weak.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["new_password"]
    assert "12345" not in weak.content.decode()
    clinician.refresh_from_db()
    assert clinician.check_password(TEST_PASSWORD)
    assert OTPCode.objects.get(user=clinician).consumed_at is None

    strong = verify(clinician.email, code, "password_reset", new_password=STRONG_PASSWORD)

    assert strong.status_code == 200
    clinician.refresh_from_db()
    assert clinician.check_password(STRONG_PASSWORD)


def test_a_wrong_code_with_a_weak_password_answers_invalid_code(clinician: User, verify) -> None:
    # The password is judged only for the holder of the right code: otherwise a weak-password
    # answer would tell that the account exists.
    OTPCodeFactory.create(user=clinician, purpose="password_reset", code="123456")

    response = verify(clinician.email, "654321", "password_reset", new_password="12345")

    assert error_of(response) == INVALID_CODE


def test_a_password_reset_without_new_password_is_a_validation_error_that_costs_no_try(
    clinician: User, verify
) -> None:
    otp = OTPCodeFactory.create(user=clinician, purpose="password_reset", code="123456")

    response = verify(clinician.email, "123456", "password_reset")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"] == {"new_password": ["This field is required."]}
    otp.refresh_from_db()
    assert otp.attempts == 0


@pytest.mark.parametrize("missing", ["email", "code"])
def test_a_missing_field_is_a_validation_error(clinician: User, api_client, missing) -> None:
    body = {"email": clinician.email, "code": "123456", "purpose": "login"}
    del body[missing]

    response = api_client.post(VERIFY_URL, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert missing in response.json()["error"]["details"]


def test_a_code_works_only_once(clinician: User, request_code, verify) -> None:
    request_code(clinician.email)
    code = last_code()
    assert verify(clinician.email, code).status_code == 200

    again = verify(clinician.email, code)

    assert error_of(again) == INVALID_CODE


@pytest.mark.parametrize(("seconds_later", "status"), [(599, 200), (600, 400), (601, 400)])
def test_a_code_expires_after_ten_minutes(
    clinician: User, request_code, verify, time_machine, seconds_later, status
) -> None:
    time_machine.move_to("2030-01-15T09:00:00Z", tick=False)
    request_code(clinician.email)
    time_machine.shift(seconds_later)

    response = verify(clinician.email, last_code())

    assert response.status_code == status
    if status == 400:
        assert error_of(response) == INVALID_CODE
        assert OTPCode.objects.get(user=clinician).consumed_at is None


def test_the_fifth_failure_kills_the_code(clinician: User, request_code, verify) -> None:
    request_code(clinician.email)
    code = last_code()

    for attempt in range(1, 6):
        assert error_of(verify(clinician.email, wrong(code))) == INVALID_CODE
        assert OTPCode.objects.get(user=clinician).attempts == attempt

    response = verify(clinician.email, code)

    assert error_of(response) == INVALID_CODE
    otp = OTPCode.objects.get(user=clinician)
    assert otp.attempts == 5
    assert otp.consumed_at is None


def test_the_right_code_on_the_fifth_try_still_works(clinician: User, request_code, verify) -> None:
    request_code(clinician.email)
    code = last_code()
    for _ in range(4):
        verify(clinician.email, wrong(code))

    response = verify(clinician.email, code)

    assert response.status_code == 200
    assert OTPCode.objects.get(user=clinician).attempts == 5


def test_a_new_code_invalidates_the_old_one(
    clinician: User, request_code, verify, time_machine
) -> None:
    time_machine.move_to("2030-01-15T09:00:00Z", tick=False)
    request_code(clinician.email)
    old = last_code()
    new = old
    while new == old:  # a repeat of the same six digits (one in a million) proves nothing
        time_machine.shift(61)
        request_code(clinician.email)
        new = last_code()

    assert error_of(verify(clinician.email, old)) == INVALID_CODE
    assert verify(clinician.email, new).status_code == 200
    assert OTPCode.objects.filter(user=clinician).count() == 1


def test_a_new_code_starts_with_fresh_tries(
    clinician: User, request_code, verify, time_machine
) -> None:
    time_machine.move_to("2030-01-15T09:00:00Z", tick=False)
    request_code(clinician.email)
    for _ in range(5):
        verify(clinician.email, wrong(last_code()))
    time_machine.shift(61)

    request_code(clinician.email)

    assert OTPCode.objects.get(user=clinician).attempts == 0
    assert verify(clinician.email, last_code()).status_code == 200


def _scenario(name: str, user: User) -> dict[str, Any]:
    """Set up one failure case; returns the verify body."""
    body = {"email": user.email, "code": "123456", "purpose": "login"}
    if name == "wrong code":
        OTPCodeFactory.create(user=user, code="123456")
        body["code"] = "999999"
    elif name == "malformed code":
        OTPCodeFactory.create(user=user, code="123456")
        body["code"] = "abc"
    elif name == "unknown email":
        body["email"] = "nobody@example.com"
    elif name == "no code requested":
        pass
    elif name == "expired":
        OTPCodeFactory.create(user=user, code="123456", expires_at="2000-01-01T00:00:00Z")
    elif name == "used":
        OTPCodeFactory.create(user=user, code="123456", consumed_at="2030-01-01T00:00:00Z")
    elif name == "out of tries":
        OTPCodeFactory.create(user=user, code="123456", attempts=5)
    elif name == "other purpose":
        OTPCodeFactory.create(user=user, code="123456", purpose="verify_email")
    elif name == "other user's code":
        other = UserFactory.create(username="frank", organization=user.organization)
        OTPCodeFactory.create(user=other, code="123456")
    elif name == "inactive account":
        OTPCodeFactory.create(user=user, code="123456")
        User.objects.filter(pk=user.pk).update(is_active=False)
    return body


@pytest.mark.parametrize(
    "scenario",
    [
        "wrong code",
        "malformed code",
        "unknown email",
        "no code requested",
        "expired",
        "used",
        "out of tries",
        "other purpose",
        "other user's code",
        "inactive account",
    ],
)
def test_every_failure_answers_the_same_invalid_code_error(
    clinician: User, api_client: APIClient, scenario: str
) -> None:
    body = _scenario(scenario, clinician)

    response = api_client.post(VERIFY_URL, body)

    assert error_of(response) == INVALID_CODE
    assert not OutstandingToken.objects.exists()  # no session was issued
    clinician.refresh_from_db()
    assert clinician.email_verified is False


def test_a_code_survives_a_request_with_surrounding_spaces(
    clinician: User, request_code, verify
) -> None:
    request_code(clinician.email)
    code = last_code()

    response = verify(f" {clinician.email.upper()} ", f" {code[:3]} {code[3:]} ")

    assert response.status_code == 200


def test_failures_and_successes_are_audited_without_the_email_or_code(
    clinician: User, request_code, verify
) -> None:
    request_code(clinician.email)
    code = last_code()
    verify(clinician.email, wrong(code))
    verify(clinician.email, code)

    events = list(
        AuditEvent.objects.order_by("id").values("action", "outcome", "actor_id", "details")
    )
    assert [(e["action"], e["outcome"], e["actor_id"]) for e in events] == [
        ("otp.generate", "success", None),
        ("otp.verify", "failed", None),
        ("otp.verify", "success", clinician.pk),
    ]
    assert events[1]["details"]["error"] == "invalid_code"
    assert clinician.email not in repr(events)
    assert code not in repr(events)
