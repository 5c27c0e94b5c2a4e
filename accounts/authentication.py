import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.functions import MD5, Upper
from django.utils import timezone
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.models import Organization, User
from pms.throttles import UserRateThrottle, Window

logger = logging.getLogger("accounts")

_CACHE_PREFIX = "auth-user:"
# How long a signed-in user is served from the cache. Saves and deletes drop the entry at once;
# this bounds only what no signal reports (a bulk update, another process's local cache).
USER_CACHE_SECONDS = 30


def _cache_key(user_id: Any) -> str:
    return f"{_CACHE_PREFIX}{user_id}"


def authenticated_user(user_id: Any, window: "Window | None" = None) -> User | None:
    """The user a valid access token names, with their organization.

    Read from the cache (one round trip) and from the database on a miss; with the request's
    rate-limit `window`, the same round trip counts the request in it (`window.count`). Any
    save or delete of the user or of their organization drops the entry, and an entry lives at most
    `USER_CACHE_SECONDS` (0 turns the cache off), which bounds how long a bulk `update()`,
    which sends no signal, can leave an entry stale. The password hash is deferred: it is never
    cached. Only its digest is, as `password_fingerprint`, computed by the database.
    """
    timeout = USER_CACHE_SECONDS
    key = _cache_key(user_id)
    user = None
    if timeout and window is not None:
        # An operation of the project's cache backends (pms/cache.py).
        user, window.count = cache.get_and_count(key, window.key, window.timeout)  # type: ignore[attr-defined]
    elif timeout:
        user = cache.get(key)
    if user is not None:
        return user  # type: ignore[no-any-return]
    user = (
        User.objects.select_related("organization")
        .defer("password")
        # simplejwt's digest of the hash (upper-case hex MD5), which tokens carry.
        .annotate(password_fingerprint=Upper(MD5("password")))
        .filter(pk=user_id)
        .first()
    )
    if user is not None and timeout:
        cache.set(key, user, timeout)
    return user


def forget_users(user_ids: list[Any]) -> None:
    """Drops the cached users now, and again once the current transaction commits: a request
    running meanwhile may have cached the row as it was before the change."""
    if user_ids:
        keys = [_cache_key(pk) for pk in user_ids]
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))


def forget_user(sender: Any, instance: User, **kwargs: Any) -> None:
    """post_save / post_delete of a user."""
    forget_users([instance.pk])


def password_matches(token: Token, user: User) -> bool:
    """Whether the token was issued under the user's current password (`CHECK_REVOKE_TOKEN`).

    A cached user brings the digest along; a user read whole has the hash itself.
    """
    fingerprint = getattr(user, "password_fingerprint", None)
    if fingerprint is None:
        fingerprint = get_md5_hash_password(user.password)
    return bool(token.get(api_settings.REVOKE_TOKEN_CLAIM) == fingerprint)


def revoke_refresh_tokens(user_id: Any) -> int:
    """Blacklists every refresh token of the user that is still alive; returns how many."""
    live = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    ).values_list("pk", flat=True)
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in live], ignore_conflicts=True
    )
    return len(revoked)


def password_changed(
    sender: Any, instance: User, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    """post_save of a user: the one place where a new password ends the sessions of the old one.

    Every path that changes a password (the admin's password form, Django's password forms,
    `set_password()` then `save()`, the password service and so the OTP reset) ends in this
    save, with Django's mark of a password set since the last save (`_password`, which also
    drives the validators' `password_changed()`; hash upgrades at sign-in clear it). It runs in
    the save's own transaction, so the password and the revocation commit together: a
    revocation left for after the commit could be lost with the process, leaving a changed
    password and live refresh tokens. Any token the revocation cannot see (issued concurrently,
    or after a bulk `update()` of the hash) still carries the old password's digest and is
    refused at its next use (`password_matches`).
    """
    if created or getattr(instance, "_password", None) is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    revoked = revoke_refresh_tokens(instance.pk)
    forget_users([instance.pk])
    logger.info("password changed (user %s, %s refresh tokens revoked)", instance.pk, revoked)


def forget_organization_users(sender: Any, instance: Organization, **kwargs: Any) -> None:
    """post_save of an organization: its users carry it."""
    forget_users(list(instance.users.values_list("pk", flat=True)))


class PasswordChanged(AuthenticationFailed):
    default_code = "password_changed"
    default_detail = "The password has changed since this token was issued; sign in again."


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's bearer authentication, reading the user (and their organization, which every
    scoped request needs) through `authenticated_user`, which also counts the request against
    the per-user rate limit in the same cache round trip (pms/throttles.py)."""

    request: Any = None

    def authenticate(self, request: Any) -> Any:
        self.request = request
        return super().authenticate(request)

    def get_user(self, validated_token: Token) -> Any:
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        if user_id is None:
            raise InvalidToken("Token contained no recognizable user identification")
        window = (
            None if self.request is None else UserRateThrottle.counted_window(self.request, user_id)
        )
        user = authenticated_user(user_id, window)
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if not password_matches(validated_token, user):
            raise PasswordChanged()
        return user


class JWTAuthenticationScheme(SimpleJWTScheme):
    """Documents our JWTAuthentication as the Bearer scheme in the OpenAPI schema."""

    target_class = "accounts.authentication.JWTAuthentication"
