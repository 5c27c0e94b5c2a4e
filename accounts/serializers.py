from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework import exceptions, serializers
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import lockout, oauth
from accounts.authentication import PasswordChanged, password_matches
from accounts.models import Organization, User
from accounts.validators import PASSWORD_MAX_LENGTH

USERNAME_MAX_LENGTH = User._meta.get_field("username").max_length  # type: ignore[union-attr]


class AccountLocked(exceptions.Throttled):
    """429 for a sign-in refused by a lockout (accounts/lockout.py)."""

    default_code = "account_locked"
    default_detail = "Too many failed sign-in attempts. The account is temporarily locked."
    extra_detail_singular = extra_detail_plural = ""

    def __init__(self) -> None:
        super().__init__(wait=settings.AXES_COOLOFF_TIME.total_seconds())

    @classmethod
    def for_request(cls, request: Any) -> "AccountLocked":
        if getattr(request, "account_locked_out", False):
            return AccountLockedUntilReset()
        return cls()


class AccountLockedUntilReset(AccountLocked):
    """The account lock: no wait ends it, so no Retry-After."""

    default_detail = (
        "Too many failed sign-in attempts. The account is locked until its password is reset."
    )

    def __init__(self) -> None:
        exceptions.Throttled.__init__(self)


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    """simplejwt's obtain, answering 429 (not 401) once a lockout refuses the attempt.

    Username and password are bounded before anything stores or hashes them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = serializers.CharField(
            write_only=True, max_length=USERNAME_MAX_LENGTH
        )
        self.fields["password"] = jwt_serializers.PasswordField(max_length=PASSWORD_MAX_LENGTH)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        request = self.context["request"]
        try:
            data = super().validate(attrs)
        except exceptions.AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise AccountLocked.for_request(request) from None
            raise
        lockout.token_signed_in(request, self.user)  # type: ignore[arg-type]
        return data


class TokenRefreshSerializer(serializers.Serializer):
    """Rotates a refresh token exactly once.

    simplejwt checks the blacklist and then blacklists in two steps, so two concurrent refreshes
    of one token could both succeed. Here the blacklist entry is created under a row lock on the
    outstanding token, and only the request that created it gets a new pair.
    """

    refresh = serializers.CharField()
    access = serializers.CharField(read_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = RefreshToken(attrs["refresh"])  # signature, expiry, blacklist
        user = User.objects.filter(pk=refresh.get(jwt_settings.USER_ID_CLAIM)).first()
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(
                "No active account found for the given token.", "no_active_account"
            )
        if not password_matches(refresh, user):
            raise PasswordChanged()
        with transaction.atomic():
            outstanding = (
                OutstandingToken.objects.select_for_update()
                .filter(jti=refresh[jwt_settings.JTI_CLAIM])
                .first()
            )
            if outstanding is None:
                raise TokenError("Token is not recognised.")
            _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
            if not created:
                raise TokenError("Token is blacklisted")
        self.user = user
        rotated = RefreshToken.for_user(user)
        return {"access": str(rotated.access_token), "refresh": str(rotated)}


class TokenBlacklistSerializer(jwt_serializers.TokenBlacklistSerializer):
    """simplejwt's logout, remembering whose token it was (for the audit trail)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refresh = RefreshToken(attrs["refresh"])  # decoded and verified once
        refresh.blacklist()
        self.user = User.objects.filter(pk=refresh.get(jwt_settings.USER_ID_CLAIM)).first()
        return {}


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug"]


class UserSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "email_verified",
            "first_name",
            "last_name",
            "role",
            "organization",
            "is_superuser",
        ]
        read_only_fields = fields


class AuthResultSerializer(TokenPairSerializer):
    """What a sign-in by OAuth or OTP returns: the JWT pair plus the user."""

    user = UserSerializer()

    @classmethod
    def for_user(cls, user: User) -> "AuthResultSerializer":
        """The result of signing `user` in: a new JWT pair."""
        refresh = RefreshToken.for_user(user)
        return cls({"access": str(refresh.access_token), "refresh": str(refresh), "user": user})


# --- Google sign-in (POST /api/accounts/oauth-login/) ------------------------------------------
# Google ID tokens run to about 1.5 kB and access tokens to at most 2 kB; the limits leave room.
ID_TOKEN_MAX_LENGTH = 8192
ACCESS_TOKEN_MAX_LENGTH = 4096


class OAuthProviderSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(
        choices=oauth.SUPPORTED_PROVIDERS, help_text="The identity provider: `google-oauth2`."
    )


class OAuthIdTokenLoginSerializer(OAuthProviderSerializer):
    """Preferred body: the Google ID token (a JWT) Google Identity Services gives the browser."""

    id_token = serializers.CharField(max_length=ID_TOKEN_MAX_LENGTH)


class OAuthAccessTokenLoginSerializer(OAuthProviderSerializer):
    """Alternative body: an OAuth access token Google issued to this application's client id."""

    access_token = serializers.CharField(max_length=ACCESS_TOKEN_MAX_LENGTH)


class OAuthLoginSerializer(OAuthProviderSerializer):
    """What the view validates: `provider` and exactly one of `id_token` and `access_token`.

    The schema documents the two allowed forms separately (the two serializers above).
    """

    id_token = serializers.CharField(max_length=ID_TOKEN_MAX_LENGTH, required=False)
    access_token = serializers.CharField(max_length=ACCESS_TOKEN_MAX_LENGTH, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("id_token" in attrs) == ("access_token" in attrs):
            raise serializers.ValidationError(
                "Send exactly one of id_token and access_token.", code="one_token_required"
            )
        return attrs
