from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from accounts.models import Organization, User

_CACHE_PREFIX = "auth-user:"


def _cache_key(user_id: Any) -> str:
    return f"{_CACHE_PREFIX}{user_id}"


def authenticated_user(user_id: Any) -> User | None:
    """The user a valid access token names, with their organization.

    Read from the cache (one round trip) and from the database on a miss. Any save or delete of
    the user or of their organization drops the entry, and an entry lives at most
    `AUTH_USER_CACHE_SECONDS` (0 turns the cache off), which bounds how long a bulk `update()`,
    which sends no signal, can leave an entry stale. The password hash is deferred: it is never
    cached.
    """
    timeout = settings.AUTH_USER_CACHE_SECONDS
    key = _cache_key(user_id)
    if timeout:
        user = cache.get(key)
        if user is not None:
            return user  # type: ignore[no-any-return]
    user = User.objects.select_related("organization").defer("password").filter(pk=user_id).first()
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


def forget_organization_users(sender: Any, instance: Organization, **kwargs: Any) -> None:
    """post_save of an organization: its users carry it."""
    forget_users(list(instance.users.values_list("pk", flat=True)))


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's bearer authentication, reading the user (and their organization, which every
    scoped request needs) through `authenticated_user`."""

    def get_user(self, validated_token: Token) -> Any:
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        if user_id is None:
            raise InvalidToken("Token contained no recognizable user identification")
        user = authenticated_user(user_id)
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


class JWTAuthenticationScheme(SimpleJWTScheme):
    """Documents our JWTAuthentication as the Bearer scheme in the OpenAPI schema."""

    target_class = "accounts.authentication.JWTAuthentication"
