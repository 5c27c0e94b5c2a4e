"""Google sign-in: POST /api/accounts/oauth-login/.

Google is replaced at the HTTP boundary only (`responses`): its certificate endpoint serves a
certificate generated here, ID tokens are signed with the matching private key, and tokeninfo /
userinfo answer like Google does. Nothing leaves the machine: an unmocked URL fails the request.
"""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests
import responses
from axes.models import AccessAttempt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.db import connection
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from responses import matchers
from rest_framework.test import APIClient
from social_django.models import UserSocialAuth

from accounts.models import User
from audit.models import AuditEvent
from pms.throttles import AuthRateThrottle
from tests.factories import GoogleIdentityFactory, UserFactory

CLIENT_ID = "1234-pms.apps.googleusercontent.com"
OTHER_CLIENT_ID = "9876-other-app.apps.googleusercontent.com"
# The URL google.oauth2.id_token.verify_oauth2_token fetches certificates from.
CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
TOKENINFO_URL = "https://oauth2.googleapis.com/tokeninfo"
USERINFO_URL = "https://www.googleapis.com/oauth2/v3/userinfo"
URL = "/api/accounts/oauth-login/"

CAROL_SUB = "108204268033311374519"
INTRUDER_SUB = "117360912345678901234"
ACCESS_TOKEN = "ya29.a0AfB_test-access-token-for-pms"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    certificate_pem: str


def _signing_key(kid: str) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.google.com test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return SigningKey(
        kid=kid,
        private_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return _signing_key("google-key-1")


@pytest.fixture(scope="module")
def forged_key() -> SigningKey:
    """Not published by 'Google', but claiming the published key's id."""
    return _signing_key("google-key-1")


def sign(key: SigningKey, **claims: Any) -> str:
    """A Google-style ID token for carol; keyword arguments override claims (None removes)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "azp": CLIENT_ID,
        "aud": CLIENT_ID,
        "sub": CAROL_SUB,
        "email": "carol@example.com",
        "email_verified": True,
        "name": "Carol Clinician",
        "iat": now,
        "exp": now + 3600,
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, key.private_pem, algorithm="RS256", headers={"kid": key.kid})


class FakeGoogle:
    """Google's HTTP endpoints, as `responses` registrations the tests can inspect."""

    def __init__(self, mock: responses.RequestsMock, key: SigningKey) -> None:
        self.mock = mock
        self.certs = mock.get(
            CERTS_URL,
            json={key.kid: key.certificate_pem},
            headers={"Cache-Control": "public, max-age=19204, must-revalidate, no-transform"},
        )

    def serve_certificates(self, **kwargs: Any) -> None:
        self.mock.remove(responses.GET, CERTS_URL)
        self.certs = self.mock.get(CERTS_URL, **kwargs)

    def access_token_for(
        self,
        *,
        aud: str = CLIENT_ID,
        sub: str = CAROL_SUB,
        email: str = "carol@example.com",
        email_verified: bool = True,
    ) -> tuple[responses.BaseResponse, responses.BaseResponse]:
        """tokeninfo and userinfo answers for ACCESS_TOKEN."""
        tokeninfo = self.mock.post(
            TOKENINFO_URL,
            json={
                "azp": aud,
                "aud": aud,
                "sub": sub,
                "scope": "openid https://www.googleapis.com/auth/userinfo.email",
                "exp": str(int(time.time()) + 3599),
                "expires_in": "3599",
                "email": email,
                "email_verified": "true" if email_verified else "false",
                "access_type": "online",
            },
            match=[matchers.header_matcher({"Authorization": f"Bearer {ACCESS_TOKEN}"})],
        )
        userinfo = self.mock.get(
            USERINFO_URL,
            json={
                "sub": sub,
                "name": "Carol Clinician",
                "email": email,
                "email_verified": email_verified,
            },
            match=[matchers.header_matcher({"Authorization": f"Bearer {ACCESS_TOKEN}"})],
        )
        return tokeninfo, userinfo


@pytest.fixture(autouse=True)
def _google_settings(settings: Any) -> None:
    settings.GOOGLE_OAUTH2_CLIENT_ID = CLIENT_ID
    settings.GOOGLE_OAUTH2_CLIENT_SECRET = "test-secret"
    settings.GOOGLE_OAUTH2_ALLOWED_DOMAINS = []


@pytest.fixture
def google(google_key: SigningKey) -> Iterator[FakeGoogle]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGoogle(mock, google_key)


@pytest.fixture
def carol_google(clinician: User) -> UserSocialAuth:
    """carol's Google account, linked by an earlier sign-in."""
    return GoogleIdentityFactory.create(user=clinician, uid=CAROL_SUB)


def sign_in(client: APIClient, **body: Any) -> Any:
    return client.post(URL, {"provider": "google-oauth2", **body}, format="json")


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


# --- ID tokens: who signs in ------------------------------------------------------------------


def test_the_url_is_the_contracts() -> None:
    assert reverse("oauth_login") == URL


def test_a_valid_id_token_signs_in_the_linked_user(
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
    clinician: User,
) -> None:
    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == clinician.pk
    assert body["user"]["organization"]["slug"] == "northside"
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.get("/api/accounts/me/").json()["username"] == "carol"
    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": body["refresh"]})
    assert refreshed.status_code == 200
    assert UserSocialAuth.objects.get().pk == carol_google.pk


def test_a_linked_google_account_signs_in_its_user_even_when_its_email_changed(
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
    clinician: User,
    staff_user: User,
) -> None:
    """The identity is the (provider, sub) pair: an email now equal to bob's changes nothing."""
    response = sign_in(api_client, id_token=sign(google_key, email=staff_user.email))

    assert response.status_code == 200
    assert response.json()["user"]["id"] == clinician.pk


def test_a_first_sign_in_links_the_user_with_the_same_verified_email(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, clinician: User
) -> None:
    assert not clinician.email_verified

    response = sign_in(api_client, id_token=sign(google_key, email="Carol@EXAMPLE.com"))

    assert response.status_code == 200
    assert response.json()["user"]["id"] == clinician.pk
    identity = UserSocialAuth.objects.get()
    assert (identity.provider, identity.uid, identity.user_id) == (
        "google-oauth2",
        CAROL_SUB,
        clinician.pk,
    )
    clinician.refresh_from_db()
    assert clinician.email_verified


@pytest.mark.django_db(transaction=True)
def test_a_first_sign_in_links_in_its_own_transaction(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, clinician: User
) -> None:
    """Outside a test transaction: the row lock taken while matching the email needs the
    pipeline's own transaction (PostgreSQL refuses SELECT ... FOR UPDATE in autocommit)."""
    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 200
    assert UserSocialAuth.objects.get().user_id == clinician.pk


def test_the_link_of_a_first_sign_in_is_used_the_next_time(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, clinician: User
) -> None:
    assert sign_in(api_client, id_token=sign(google_key)).status_code == 200
    clinician.email = "carol.new@example.com"
    clinician.save()

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 200
    assert response.json()["user"]["id"] == clinician.pk
    assert UserSocialAuth.objects.count() == 1


def test_a_google_account_matching_no_user_is_refused_and_nobody_is_created(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, clinician: User
) -> None:
    users_before = User.objects.count()

    response = sign_in(api_client, id_token=sign(google_key, email="stranger@example.com"))

    assert response.status_code == 403
    assert error_code(response) == "google_account_not_linked"
    assert "administrator" in response.json()["error"]["message"]
    assert "stranger" not in response.content.decode()
    assert User.objects.count() == users_before
    assert not UserSocialAuth.objects.exists()


def test_a_google_account_matching_an_inactive_user_is_refused(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, clinician: User
) -> None:
    clinician.is_active = False
    clinician.save()

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 403
    assert error_code(response) == "account_inactive"
    assert not UserSocialAuth.objects.exists()


def test_a_linked_google_account_of_a_deactivated_user_is_refused(
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
    clinician: User,
) -> None:
    clinician.is_active = False
    clinician.save()

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 403
    assert error_code(response) == "account_inactive"


def test_a_second_google_account_with_the_same_email_never_takes_over_a_linked_user(
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
    clinician: User,
) -> None:
    response = sign_in(
        api_client, id_token=sign(google_key, sub=INTRUDER_SUB, email="carol@example.com")
    )

    assert response.status_code == 403
    assert error_code(response) == "google_identity_conflict"
    assert list(UserSocialAuth.objects.values_list("uid", "user_id")) == [(CAROL_SUB, clinician.pk)]


def test_a_user_of_another_clinic_links_and_signs_in_to_their_own_organization(
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    clinician: User,
    foreign_clinician: User,
) -> None:
    response = sign_in(
        api_client, id_token=sign(google_key, sub=INTRUDER_SUB, email=foreign_clinician.email)
    )

    assert response.status_code == 200
    assert response.json()["user"]["id"] == foreign_clinician.pk
    assert response.json()["user"]["organization"]["slug"] == "southside"
    assert UserSocialAuth.objects.get().user_id == foreign_clinician.pk


def test_several_users_with_the_google_email_are_refused(
    postgres_only: None,
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    clinician: User,
) -> None:
    """The case-insensitive unique constraint normally rules this out; without it (or for
    addresses that only Unicode case folding makes equal) no account is guessed."""
    constraint = next(
        c for c in User._meta.constraints if c.name == "accounts_user_email_ci_unique"
    )
    with connection.schema_editor() as editor:  # rolled back with the test's transaction
        editor.remove_constraint(User, constraint)
    UserFactory.create(username="carol2", email="CAROL@example.com")

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 403
    assert error_code(response) == "google_account_ambiguous"
    assert not UserSocialAuth.objects.exists()


def test_the_domain_allow_list_refuses_other_domains(
    settings: Any,
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
) -> None:
    settings.GOOGLE_OAUTH2_ALLOWED_DOMAINS = ["northside-clinic.example"]

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 403
    assert error_code(response) == "google_domain_not_allowed"


def test_the_domain_allow_list_admits_its_domains_whatever_the_case(
    settings: Any,
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    clinician: User,
) -> None:
    settings.GOOGLE_OAUTH2_ALLOWED_DOMAINS = ["other.example", "Example.COM"]

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 200
    assert response.json()["user"]["id"] == clinician.pk


# --- ID tokens: verification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": OTHER_CLIENT_ID}, "invalid_google_token"),
        ({"iss": "https://accounts.example.com"}, "invalid_google_token"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_google_token"),
        ({"iat": int(time.time()) + 3600}, "invalid_google_token"),
        ({"sub": None}, "invalid_google_token"),
        ({"email_verified": False}, "google_email_not_verified"),
        ({"email_verified": None}, "google_email_not_verified"),
        ({"email_verified": "true"}, "google_email_not_verified"),
    ],
    ids=[
        "wrong-audience",
        "wrong-issuer",
        "expired",
        "issued-in-the-future",
        "no-subject",
        "unverified-email",
        "no-email-verified-claim",
        "email-verified-as-string",
    ],
)
def test_an_id_token_failing_verification_is_refused(
    claims: dict[str, Any],
    code: str,
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
) -> None:
    response = sign_in(api_client, id_token=sign(google_key, **claims))

    assert response.status_code == 401
    assert error_code(response) == code
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "access" not in response.json()


def test_both_google_issuer_spellings_are_accepted(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, carol_google: UserSocialAuth
) -> None:
    response = sign_in(api_client, id_token=sign(google_key, iss="accounts.google.com"))

    assert response.status_code == 200


def test_an_id_token_with_a_bad_signature_is_refused(
    api_client: APIClient,
    google: FakeGoogle,
    forged_key: SigningKey,
    carol_google: UserSocialAuth,
) -> None:
    response = sign_in(api_client, id_token=sign(forged_key))

    assert response.status_code == 401
    assert error_code(response) == "invalid_google_token"


def test_an_id_token_signed_by_an_unpublished_key_is_refused(
    api_client: APIClient, google: FakeGoogle, carol_google: UserSocialAuth
) -> None:
    response = sign_in(api_client, id_token=sign(_signing_key("unknown-key")))

    assert response.status_code == 401
    assert error_code(response) == "invalid_google_token"


def test_an_unsigned_id_token_is_refused(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, carol_google: UserSocialAuth
) -> None:
    signed = sign(google_key)
    header, payload, _ = signed.split(".")
    claims = jwt.decode(signed, options={"verify_signature": False})
    alg_none = jwt.encode(claims, "", algorithm="none")

    for token in (alg_none, f"{header}.{payload}.", "not-a-jwt"):
        response = sign_in(api_client, id_token=token)
        assert response.status_code == 401
        assert error_code(response) == "invalid_google_token"


def test_google_certificates_are_fetched_once_while_fresh(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, carol_google: UserSocialAuth
) -> None:
    for _ in range(3):
        assert sign_in(api_client, id_token=sign(google_key)).status_code == 200

    assert google.certs.call_count == 1


def test_google_certificates_are_fetched_again_after_their_max_age(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, carol_google: UserSocialAuth
) -> None:
    google.serve_certificates(
        json={google_key.kid: google_key.certificate_pem},
        headers={"Cache-Control": "public, max-age=1"},
    )
    assert sign_in(api_client, id_token=sign(google_key)).status_code == 200
    assert sign_in(api_client, id_token=sign(google_key)).status_code == 200
    assert google.certs.call_count == 1

    time.sleep(1.2)  # real time: the Redis cache expires keys on its own clock
    assert sign_in(api_client, id_token=sign(google_key)).status_code == 200

    assert google.certs.call_count == 2


def test_unreachable_google_certificates_answer_503_and_are_not_cached(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, carol_google: UserSocialAuth
) -> None:
    google.serve_certificates(status=500, json={"error": "backend"})

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 503
    assert error_code(response) == "google_unavailable"
    google.serve_certificates(json={google_key.kid: google_key.certificate_pem})
    assert sign_in(api_client, id_token=sign(google_key)).status_code == 200


# --- Access tokens ----------------------------------------------------------------------------


def test_a_valid_access_token_links_and_signs_in_without_storing_the_token(
    api_client: APIClient, google: FakeGoogle, clinician: User
) -> None:
    tokeninfo, userinfo = google.access_token_for()

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 200
    assert response.json()["user"]["id"] == clinician.pk
    identity = UserSocialAuth.objects.get()
    assert (identity.uid, identity.user_id) == (CAROL_SUB, clinician.pk)
    assert "access_token" not in identity.extra_data
    assert ACCESS_TOKEN not in json.dumps(identity.extra_data)
    # The token travels in a header, never in a URL that proxies would log.
    assert all(ACCESS_TOKEN not in str(call.request.url) for call in google.mock.calls)
    assert (tokeninfo.call_count, userinfo.call_count) == (1, 1)


def test_a_valid_access_token_signs_in_the_linked_user(
    api_client: APIClient, google: FakeGoogle, carol_google: UserSocialAuth, clinician: User
) -> None:
    google.access_token_for()

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 200
    assert response.json()["user"]["id"] == clinician.pk
    carol_google.refresh_from_db()
    assert "access_token" not in carol_google.extra_data
    assert carol_google.extra_data["sub"] == CAROL_SUB


def test_an_access_token_issued_to_another_app_is_refused(
    api_client: APIClient, google: FakeGoogle, carol_google: UserSocialAuth
) -> None:
    tokeninfo, userinfo = google.access_token_for(aud=OTHER_CLIENT_ID)

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 401
    assert error_code(response) == "invalid_google_token"
    assert tokeninfo.call_count == 1
    assert userinfo.call_count == 0


def test_an_access_token_google_does_not_know_is_refused(
    api_client: APIClient, google: FakeGoogle, clinician: User
) -> None:
    google.mock.post(
        TOKENINFO_URL,
        status=400,
        json={"error": "invalid_token", "error_description": "Invalid Value"},
    )

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 401
    assert error_code(response) == "invalid_google_token"
    assert not UserSocialAuth.objects.exists()


def test_an_access_token_whose_userinfo_is_about_another_account_is_refused(
    api_client: APIClient, google: FakeGoogle, clinician: User
) -> None:
    google.access_token_for()
    google.mock.replace(
        responses.GET,
        USERINFO_URL,
        json={"sub": INTRUDER_SUB, "email": "carol@example.com", "email_verified": True},
    )

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 401
    assert error_code(response) == "invalid_google_token"
    assert not UserSocialAuth.objects.exists()


def test_an_access_token_of_an_account_with_an_unverified_email_is_refused(
    api_client: APIClient, google: FakeGoogle, clinician: User
) -> None:
    google.access_token_for(email_verified=False)

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 401
    assert error_code(response) == "google_email_not_verified"
    assert not UserSocialAuth.objects.exists()


def test_an_access_token_of_a_google_account_matching_no_user_is_refused(
    api_client: APIClient, google: FakeGoogle, clinician: User
) -> None:
    google.access_token_for(email="stranger@example.com")

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 403
    assert error_code(response) == "google_account_not_linked"


def test_an_unreachable_tokeninfo_answers_503(
    api_client: APIClient, google: FakeGoogle, clinician: User
) -> None:
    google.mock.post(TOKENINFO_URL, body=requests.exceptions.ConnectionError("unreachable"))

    response = sign_in(api_client, access_token=ACCESS_TOKEN)

    assert response.status_code == 503
    assert error_code(response) == "google_unavailable"


# --- The endpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "github", "id_token": "x"}, "provider"),
        ({"id_token": "x"}, "provider"),
        ({"provider": "google-oauth2"}, "non_field_errors"),
        ({"provider": "google-oauth2", "id_token": "x", "access_token": "y"}, "non_field_errors"),
        ({"provider": "google-oauth2", "id_token": ""}, "id_token"),
        ({"provider": "google-oauth2", "access_token": "y" * 4097}, "access_token"),
    ],
    ids=["unsupported-provider", "no-provider", "no-token", "both-tokens", "blank", "too-long"],
)
def test_a_malformed_request_is_a_validation_error(
    body: dict[str, Any], field: str, api_client: APIClient, google: FakeGoogle
) -> None:
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert field in response.json()["error"]["details"]
    assert not google.mock.calls


def test_google_sign_in_without_a_client_id_is_unavailable(
    settings: Any, api_client: APIClient, google: FakeGoogle, google_key: SigningKey
) -> None:
    settings.GOOGLE_OAUTH2_CLIENT_ID = ""

    response = sign_in(api_client, id_token=sign(google_key, aud=""))

    assert response.status_code == 503
    assert error_code(response) == "google_sign_in_not_configured"
    assert not google.mock.calls


def test_the_endpoint_shares_the_auth_throttle(
    monkeypatch: pytest.MonkeyPatch, api_client: APIClient, google: FakeGoogle
) -> None:
    monkeypatch.setattr(AuthRateThrottle, "rate", "2/min", raising=False)
    api_client.post("/api/auth/token/", {"username": "nobody", "password": "wrong"})

    assert sign_in(api_client, id_token="not-a-jwt").status_code == 401
    response = sign_in(api_client, id_token="not-a-jwt")

    assert response.status_code == 429
    assert error_code(response) == "throttled"


def test_a_sign_in_costs_a_fixed_number_of_queries(
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
    django_assert_num_queries: Any,
) -> None:
    token = sign(google_key)
    # axes lockout check; the identity with its user and organization; savepoint, extra_data
    # update, release; the outstanding refresh token insert; the audit event insert.
    with django_assert_num_queries(7):
        response = sign_in(api_client, id_token=token)

    assert response.status_code == 200


def test_the_schema_documents_both_body_forms() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"][URL]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    forms = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["oneOf"]
    required = [
        schema["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]]["required"]
        for form in forms
    ]

    assert sorted(sorted(fields) for fields in required) == [
        ["access_token", "provider"],
        ["id_token", "provider"],
    ]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AuthResult"
    )
    assert operation["security"] == [{}]
    assert {"401", "403", "429", "503"} <= operation["responses"].keys()


def test_a_client_locked_out_by_axes_is_refused(
    settings: Any,
    api_client: APIClient,
    google: FakeGoogle,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
) -> None:
    """Google sign-in goes through Django's authenticate(), so an operator's per-IP lockout
    applies to it as to passwords."""
    settings.AXES_LOCKOUT_PARAMETERS = ["ip_address"]
    AccessAttempt.objects.create(
        ip_address="127.0.0.1",
        user_agent="",
        get_data="",
        post_data="",
        http_accept="",
        path_info="/api/auth/token/",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
    )

    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 429
    assert error_code(response) == "account_locked"


def test_a_google_sign_in_is_on_record(
    api_client: APIClient, google: FakeGoogle, google_key: SigningKey, carol_google: UserSocialAuth
) -> None:
    sign_in(api_client, id_token=sign(google_key))
    sign_in(api_client, id_token="not-a-jwt")

    events = list(AuditEvent.objects.filter(action="auth.oauth_login").order_by("id"))
    assert [(event.outcome, event.actor_id) for event in events] == [
        ("success", carol_google.user_id),
        ("denied", None),
    ]
    assert events[1].details["error"] == "invalid_google_token"


# --- forged ID tokens cost no call to Google --------------------------------------------------


@pytest.fixture
def offline() -> Iterator[responses.RequestsMock]:
    """No URL registered: any HTTP call fails the way an unreachable Google does."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _hs256_token() -> str:
    claims = {"iss": "https://accounts.google.com", "aud": CLIENT_ID, "sub": CAROL_SUB}
    return jwt.encode(claims, CLIENT_ID, algorithm="HS256", headers={"kid": "google-key-1"})


@pytest.mark.parametrize(
    "token",
    [
        "x.y.z",
        "not-a-jwt",
        jwt.encode({"sub": CAROL_SUB, "aud": CLIENT_ID}, "", algorithm="none"),
        _hs256_token(),
    ],
    ids=["x.y.z", "one-segment", "alg-none", "alg-hs256"],
)
def test_a_forged_id_token_is_a_401_without_any_network_call(
    api_client: APIClient, offline: responses.RequestsMock, carol_google: UserSocialAuth, token: str
) -> None:
    response = sign_in(api_client, id_token=token)

    assert response.status_code == 401
    assert error_code(response) == "invalid_google_token"
    assert len(offline.calls) == 0
    assert AuditEvent.objects.get(action="auth.oauth_login").outcome == "denied"


def test_a_well_formed_id_token_still_needs_google_when_it_is_unreachable(
    api_client: APIClient,
    offline: responses.RequestsMock,
    google_key: SigningKey,
    carol_google: UserSocialAuth,
) -> None:
    response = sign_in(api_client, id_token=sign(google_key))

    assert response.status_code == 503
    assert error_code(response) == "google_unavailable"
    assert [call.request.url for call in offline.calls] == [CERTS_URL]
