import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from pms.throttles import AuthRateThrottle
from tests.factories import TEST_PASSWORD

TOKEN_URL = "/api/auth/token/"
REFRESH_URL = "/api/auth/token/refresh/"
LOGOUT_URL = "/api/auth/token/blacklist/"
ME_URL = "/api/accounts/me/"


def obtain(client: APIClient, username: str, password: str = TEST_PASSWORD, fmt: str = "json"):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format=fmt)


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_it_issues_a_token_pair_for_json_and_form_bodies(api_client, clinician, fmt):
    response = obtain(api_client, "carol", fmt=fmt)

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    me = bearer(response.json()["access"]).get(ME_URL)
    assert me.status_code == 200
    assert me.json()["username"] == "carol"


def test_it_accepts_an_urlencoded_form_body(api_client, clinician):
    response = api_client.post(
        TOKEN_URL,
        f"username=carol&password={TEST_PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert "access" in response.json()


def test_it_rejects_a_wrong_password_with_401_in_the_envelope(api_client, clinician):
    response = obtain(api_client, "carol", password="wrong-password")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_active_account"


def test_refresh_rotates_and_the_old_refresh_token_is_dead(api_client, clinician):
    first = obtain(api_client, "carol").json()

    rotated = api_client.post(REFRESH_URL, {"refresh": first["refresh"]})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]

    reused = api_client.post(REFRESH_URL, {"refresh": first["refresh"]})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "token_not_valid"

    again = api_client.post(REFRESH_URL, {"refresh": rotated.json()["refresh"]})
    assert again.status_code == 200


def test_logout_revokes_the_refresh_token(api_client, clinician):
    pair = obtain(api_client, "carol").json()

    logout = api_client.post(LOGOUT_URL, {"refresh": pair["refresh"]})
    assert logout.status_code == 200

    refresh = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]})
    assert refresh.status_code == 401
    assert refresh.json()["error"]["code"] == "token_not_valid"


def test_an_inactive_user_cannot_obtain_a_token(api_client, clinician):
    User.objects.filter(pk=clinician.pk).update(is_active=False)

    response = obtain(api_client, "carol")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_active_account"


def test_an_inactive_user_cannot_refresh_or_use_an_access_token(api_client, clinician):
    pair = obtain(api_client, "carol").json()
    User.objects.filter(pk=clinician.pk).update(is_active=False)

    refresh = api_client.post(REFRESH_URL, {"refresh": pair["refresh"]})
    assert refresh.status_code == 401
    assert refresh.json()["error"]["code"] == "no_active_account"
    me = bearer(pair["access"]).get(ME_URL)
    assert me.status_code == 401


def test_a_garbage_refresh_token_is_a_401(api_client, db):
    response = api_client.post(REFRESH_URL, {"refresh": "not-a-jwt"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_the_account_locks_after_repeated_failures(api_client, clinician):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert obtain(api_client, "carol", password="wrong").status_code == 401

    locked = obtain(api_client, "carol", password="wrong")
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())

    # While locked, even the right password is refused.
    correct = obtain(api_client, "carol")
    assert correct.status_code == 429
    assert "access" not in correct.json()


def test_a_lockout_is_per_account(api_client, clinician, staff_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        obtain(api_client, "carol", password="wrong")

    assert obtain(api_client, "bob").status_code == 200


def test_the_token_endpoint_is_throttled_per_ip(api_client, clinician, monkeypatch):
    monkeypatch.setattr(AuthRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})
    for _ in range(3):
        assert obtain(api_client, "carol").status_code == 200

    throttled = obtain(api_client, "carol")

    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    other_ip = api_client.post(
        TOKEN_URL, {"username": "carol", "password": TEST_PASSWORD}, REMOTE_ADDR="10.1.2.3"
    )
    assert other_ip.status_code == 200
