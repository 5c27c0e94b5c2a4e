"""Any password change ends the sessions of the old password: every refresh token of the user is
revoked, the cached user dropped, and tokens issued before the change are refused."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import authentication
from accounts.authentication import authenticated_user
from accounts.models import User
from accounts.services import user_set_password
from tests.factories import TEST_PASSWORD, OTPCodeFactory, UserFactory

TOKEN_URL = "/api/auth/token/"
REFRESH_URL = "/api/auth/token/refresh/"
ME_URL = "/api/accounts/me/"
NEW_PASSWORD = "quiet-meadow-lantern-42"


@dataclass
class Session:
    """What a signed-in client holds: two refresh tokens (two devices) and an access token."""

    refresh: list[str]
    access: str


@pytest.fixture
def session(clinician: User) -> Session:
    tokens = [RefreshToken.for_user(clinician) for _ in range(2)]
    authenticated_user(clinician.pk)  # cached, as after a first request
    return Session(refresh=[str(token) for token in tokens], access=str(tokens[0].access_token))


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def through_the_admin_password_form(user: User) -> None:
    admin = Client()
    admin.force_login(UserFactory.create(is_staff=True, is_superuser=True, organization=None))
    response = admin.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content


def through_set_password_and_save(user: User) -> None:
    user.set_password(NEW_PASSWORD)
    user.save()


def through_the_password_change_form(user: User) -> None:
    form = PasswordChangeForm(
        user,
        {
            "old_password": TEST_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert form.is_valid(), form.errors
    form.save()


def through_the_set_password_form(user: User) -> None:
    form = SetPasswordForm(user, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert form.is_valid(), form.errors
    form.save()


def through_the_password_service(user: User) -> None:
    user_set_password(user=user, password=NEW_PASSWORD)


def through_an_otp_password_reset(user: User) -> None:
    OTPCodeFactory.create(user=user, purpose="password_reset", code="123456")
    response = APIClient().post(
        "/api/otp/verify/",
        {
            "email": user.email,
            "code": "123456",
            "purpose": "password_reset",
            "new_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 200, response.content


PATHS = [
    through_the_admin_password_form,
    through_set_password_and_save,
    through_the_password_change_form,
    through_the_set_password_form,
    through_the_password_service,
    through_an_otp_password_reset,
]


@pytest.mark.parametrize("change_password", PATHS, ids=lambda path: path.__name__)
def test_a_password_change_revokes_every_refresh_token_and_drops_the_cached_user(
    clinician: User, session: Session, change_password: Callable[[User], None]
) -> None:
    other = RefreshToken.for_user(UserFactory.create(username="erin"))
    assert cache.get(f"auth-user:{clinician.pk}") is not None

    change_password(User.objects.get(pk=clinician.pk))

    assert cache.get(f"auth-user:{clinician.pk}") is None
    assert not OutstandingToken.objects.filter(
        user=clinician, blacklistedtoken__isnull=True
    ).exists()
    for refresh in session.refresh:
        refused = APIClient().post(REFRESH_URL, {"refresh": refresh})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_not_valid"
    refused = bearer(session.access).get(ME_URL)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "password_changed"
    # Someone else's session is untouched.
    assert APIClient().post(REFRESH_URL, {"refresh": str(other)}).status_code == 200


def test_the_new_password_signs_in_and_its_tokens_work(clinician: User, session: Session) -> None:
    user_set_password(user=clinician, password=NEW_PASSWORD)

    pair = APIClient().post(TOKEN_URL, {"username": "carol", "password": NEW_PASSWORD}).json()

    assert bearer(pair["access"]).get(ME_URL).status_code == 200
    assert APIClient().post(REFRESH_URL, {"refresh": pair["refresh"]}).status_code == 200


def test_a_save_that_keeps_the_password_keeps_the_sessions(
    clinician: User, session: Session
) -> None:
    clinician.first_name = "Caroline"
    clinician.save()

    assert bearer(session.access).get(ME_URL).status_code == 200
    assert APIClient().post(REFRESH_URL, {"refresh": session.refresh[0]}).status_code == 200


def test_disabling_the_password_in_the_admin_ends_the_sessions(
    clinician: User, session: Session
) -> None:
    """Django records no password change for an unusable password, so nothing is blacklisted;
    the tokens still carry the old password's digest and are refused."""
    admin = Client()
    admin.force_login(UserFactory.create(is_staff=True, is_superuser=True, organization=None))

    response = admin.post(
        f"/admin/accounts/user/{clinician.pk}/password/",
        {"usable_password": "false", "unset-password": "1"},
    )

    assert response.status_code == 302
    refused = APIClient().post(REFRESH_URL, {"refresh": session.refresh[0]})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "password_changed"
    assert bearer(session.access).get(ME_URL).status_code == 401


def test_tokens_outlive_no_change_of_the_hash_even_one_no_signal_reports(
    clinician: User, session: Session, monkeypatch: Any
) -> None:
    """A bulk update sends no signal, so nothing is revoked: the tokens issued under the old
    password are refused anyway, the refresh at once and the access token once the cached
    user expires (here: no cache)."""
    monkeypatch.setattr(authentication, "USER_CACHE_SECONDS", 0)
    User.objects.filter(pk=clinician.pk).update(password=make_password(NEW_PASSWORD))

    refused = APIClient().post(REFRESH_URL, {"refresh": session.refresh[0]})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "password_changed"
    assert bearer(session.access).get(ME_URL).json()["error"]["code"] == "password_changed"


def test_the_password_service_refuses_a_weak_password_and_changes_nothing(
    clinician: User, session: Session
) -> None:
    with pytest.raises(ValidationError):
        user_set_password(user=clinician, password="12345")

    clinician.refresh_from_db()
    assert clinician.check_password(TEST_PASSWORD)
    assert APIClient().post(REFRESH_URL, {"refresh": session.refresh[0]}).status_code == 200


def test_no_path_sets_a_password_longer_than_sign_in_accepts(clinician: User) -> None:
    with pytest.raises(ValidationError) as refused:
        user_set_password(user=clinician, password="long-passphrase-" * 9)

    assert [error.code for error in refused.value.error_list] == ["password_too_long"]
    user_set_password(user=clinician, password="p" * 64 + "-lantern-" + "q" * 55)  # 128
