"""Google sign-in: the one module that talks to Google.

Two kinds of Google token are accepted (`POST /api/accounts/oauth-login/`, docs/architecture.md):

* **ID tokens** are verified here, locally: first their shape (a JWT whose header says RS256,
  read with PyJWT before anything is fetched), then, with google-auth, the signature against
  Google's published certificates, `aud` equal to `GOOGLE_OAUTH2_CLIENT_ID`, issuer, expiry and
  `email_verified`.
  The certificates live in Django's cache for the max-age Google sends, so every app instance
  sharing Redis fetches them once per rotation, not once per sign-in.
* **Access tokens** go through social-auth's Google backend (`do_auth`), after Google's tokeninfo
  endpoint confirms the token was issued to our own client id: a token another app obtained from
  the same person must not sign them in here.

Either way the verified identity then runs the social-auth pipeline of `accounts/pipeline.py`,
which signs in the user linked to that Google account or links the one user with the same verified
email, and refuses everything else. Nobody is ever created by signing in with Google.

Errors are API errors with their own codes; messages and logs carry no email or token.
"""

import logging
import re
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from google.auth import exceptions as google_exceptions
from google.auth import transport
from google.auth.transport import requests as google_requests
from google.oauth2 import id_token as google_id_token
from rest_framework import exceptions, status
from rest_framework.request import Request
from social_core.backends import google
from social_core.exceptions import AuthProviderError, AuthResponseError, SocialAuthBaseException
from social_django.strategy import create_session
from social_django.utils import load_backend, load_strategy

from accounts.models import User
from pms.exceptions import ApplicationError, ServiceUnavailable

logger = logging.getLogger(__name__)

TOKENINFO_URL = "https://oauth2.googleapis.com/tokeninfo"
# Tolerated difference between our clock and Google's when checking `iat` and `exp`.
CLOCK_SKEW_SECONDS = 10
# Used when Google's certificate response carries no max-age; capped so a rotation is never missed.
DEFAULT_CERTS_MAX_AGE = 3600
MAX_CERTS_MAX_AGE = 24 * 3600
_MAX_AGE = re.compile(r"max-age=(\d+)")
# The one algorithm Google signs ID tokens with; any other (`none`, HS256) is a forgery.
GOOGLE_ID_TOKEN_ALGORITHM = "RS256"  # noqa: S105 - an algorithm name
# social-auth failures that mean "Google is unreachable or overloaded", not "bad token".
_UNAVAILABLE_CODES = {"timeout", "connection_failed", "tls_error", "unavailable", "rate_limited"}


# --- Errors ----------------------------------------------------------------------------------
# 401s subclass AuthenticationFailed so DRF sends `WWW-Authenticate` (the view names the scheme).


class InvalidGoogleToken(exceptions.AuthenticationFailed):
    default_code = "invalid_google_token"
    default_detail = "The Google token is invalid, expired or was not issued for this application."


class GoogleEmailNotVerified(exceptions.AuthenticationFailed):
    default_code = "google_email_not_verified"
    default_detail = "Google has not verified the email address of this Google account."


class GoogleAccountNotLinked(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "google_account_not_linked"
    default_detail = (
        "No account matches this Google account. Ask your clinic administrator to create an "
        "account with the same email address."
    )


class GoogleAccountAmbiguous(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "google_account_ambiguous"
    default_detail = (
        "Several accounts match the email address of this Google account. Ask your clinic "
        "administrator to resolve it."
    )


class GoogleIdentityConflict(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "google_identity_conflict"
    default_detail = "This account is already linked to a different Google account."


class GoogleDomainNotAllowed(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "google_domain_not_allowed"
    default_detail = "Google accounts of this email domain may not sign in here."


class AccountInactive(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "account_inactive"
    default_detail = "This account is disabled. Ask your clinic administrator."


class GoogleUnavailable(ServiceUnavailable):
    default_code = "google_unavailable"
    default_detail = "Google could not be reached to verify the sign-in. Try again shortly."


class GoogleSignInNotConfigured(ServiceUnavailable):
    default_code = "google_sign_in_not_configured"
    default_detail = "Google sign-in is not configured on this server."


# --- ID tokens -------------------------------------------------------------------------------


class _CachedResponse(transport.Response):
    """A certificate response served from the cache."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def status(self) -> int:
        return status.HTTP_200_OK

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def data(self) -> bytes:
        return self._data


def _max_age(headers: Any) -> int:
    match = _MAX_AGE.search(headers.get("Cache-Control", "") or "")
    seconds = int(match.group(1)) if match else DEFAULT_CERTS_MAX_AGE
    return min(seconds, MAX_CERTS_MAX_AGE)


class CachingCertsRequest(google_requests.Request):
    """google-auth's HTTP transport, answering its certificate GETs from Django's cache.

    google-auth fetches Google's certificates on every verification unless the transport caches
    them; this one keeps each response body for the max-age Google sends (Cache-Control) and
    bounds every request by `SOCIAL_AUTH_REQUESTS_TIMEOUT` instead of google-auth's 120 s.
    """

    def __call__(  # type: ignore[override]
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        timeout = timeout or settings.SOCIAL_AUTH_REQUESTS_TIMEOUT
        if method != "GET":
            return super().__call__(url, method, body, headers, timeout, **kwargs)
        cache_key = f"google-oauth2:certs:{url}"
        cached = cache.get(cache_key)
        if cached is not None:
            return _CachedResponse(cached)
        response = super().__call__(url, method, body, headers, timeout, **kwargs)
        max_age = _max_age(response.headers)
        if response.status == status.HTTP_200_OK and max_age > 0:
            cache.set(cache_key, response.data, max_age)
        return response


def _require_google_shape(token: str) -> None:
    """Refuses what cannot be a Google ID token before google-auth fetches any certificate: such
    a token is a 401 without a call to Google, even while Google is unreachable."""
    try:
        header = jwt.decode_complete(token, options={"verify_signature": False})["header"]
    except jwt.PyJWTError:
        logger.info("google sign-in: ID token rejected (not a JWT)")
        raise InvalidGoogleToken() from None
    if header.get("alg") != GOOGLE_ID_TOKEN_ALGORITHM:
        logger.info("google sign-in: ID token rejected (algorithm)")
        raise InvalidGoogleToken()


def verify_id_token(token: str) -> dict[str, Any]:
    """The claims of a Google ID token, once signature, aud, iss, exp and email_verified hold."""
    _require_google_shape(token)
    try:
        claims = google_id_token.verify_oauth2_token(
            token,
            CachingCertsRequest(),
            audience=settings.GOOGLE_OAUTH2_CLIENT_ID,
            clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
        )
    except google_exceptions.TransportError:
        logger.warning("google sign-in: certificates could not be fetched")
        raise GoogleUnavailable() from None
    except (ValueError, google_exceptions.GoogleAuthError) as exc:
        # The exception text may quote the token: log only its type.
        logger.info("google sign-in: ID token rejected (%s)", type(exc).__name__)
        raise InvalidGoogleToken() from None
    if not claims.get("sub"):
        raise InvalidGoogleToken()
    if claims.get("email_verified") is not True or not claims.get("email"):
        raise GoogleEmailNotVerified()
    return dict(claims)


# --- Access tokens: social-auth's backend ------------------------------------------------------


class GoogleOAuth2(google.GoogleOAuth2):
    """social-auth's Google backend (listed in AUTHENTICATION_BACKENDS), hardened:

    * an access token is used only once Google's tokeninfo says it was issued to our client id,
      and the userinfo it yields must be about the same Google account (`sub`);
    * Google's access token never reaches `UserSocialAuth.extra_data`;
    * the pipeline (lookup, email match, link) commits as one transaction.
    """

    def get_key_and_secret(self) -> tuple[str, str]:
        return settings.GOOGLE_OAUTH2_CLIENT_ID, settings.GOOGLE_OAUTH2_CLIENT_SECRET

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        # POST with the token in the header, as Google's own client libraries do: it stays out
        # of URLs and therefore out of proxy and debug logs.
        token_info = self.get_json(
            TOKENINFO_URL, method="POST", headers={"Authorization": f"Bearer {access_token}"}
        )
        client_id, _ = self.get_key_and_secret()
        if not client_id or token_info.get("aud") != client_id:
            logger.warning("google sign-in: access token issued to another client refused")
            raise InvalidGoogleToken()
        data = super().user_data(access_token, *args, **kwargs)
        if not data or not data.get("sub") or data.get("sub") != token_info.get("sub"):
            raise InvalidGoogleToken()
        return data

    def extra_data(
        self,
        user: Any,
        uid: str,
        response: dict[str, Any],
        details: dict[str, Any],
        pipeline_kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        data = super().extra_data(user, uid, response, details, pipeline_kwargs)
        # We never call Google on the user's behalf later, so there is nothing to keep it for.
        data.pop("access_token", None)
        return data

    def run_authentication(self, *args: Any, **kwargs: Any) -> Any:
        with transaction.atomic():
            return super().run_authentication(*args, **kwargs)


SUPPORTED_PROVIDERS = (GoogleOAuth2.name,)


def _api_error(exc: SocialAuthBaseException) -> exceptions.APIException:
    """The API error for a social-auth failure while talking to Google."""
    logger.info("google sign-in: social-auth refused (%s, %s)", type(exc).__name__, exc.code)
    if isinstance(exc, AuthProviderError) and exc.code in _UNAVAILABLE_CODES:
        return GoogleUnavailable()
    if isinstance(exc, AuthResponseError) and exc.claim == "email_verified":
        return GoogleEmailNotVerified()
    return InvalidGoogleToken()


def google_sign_in(
    *, request: Request, provider: str, id_token: str = "", access_token: str = ""
) -> User:
    """The user a Google ID token or access token signs in; raises an API error otherwise.

    Exactly one of `id_token` and `access_token` is given (the serializer enforces it).
    `request` is DRF's, as simplejwt passes it to authenticate(): a django-axes lockout then
    reaches the client as our 429 envelope, not as AxesMiddleware's HTML page.
    """
    if not settings.GOOGLE_OAUTH2_CLIENT_ID:
        raise GoogleSignInNotConfigured()
    # API requests carry no session (pms.middleware.AdminOnly); the pipeline, which keeps
    # nothing between requests here, gets a fresh one that is never saved.
    request.session = create_session()
    strategy = load_strategy(request)
    backend = load_backend(strategy, provider, redirect_uri=None)
    try:
        if id_token:
            user = strategy.authenticate(backend, response=verify_id_token(id_token))
        else:
            user = backend.do_auth(access_token)
    except SocialAuthBaseException as exc:
        raise _api_error(exc) from None
    if not isinstance(user, User):
        # The pipeline returns a user or raises, so Django's authenticate() answers None only
        # when a backend refused with PermissionDenied: django-axes, for a locked-out client.
        from accounts.serializers import AccountLocked  # the serializers import this module

        raise AccountLocked.for_request(request)
    logger.info("google sign-in: user %s signed in", user.pk)
    return user
