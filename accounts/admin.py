"""Users in the Django admin, and the platform's own records.

A clinic admin manages their clinic's users: clinic roles only, never superuser status, groups,
permissions or organization (admin access follows the role: accounts/onboarding.py). Platform
operators (superusers) also see organizations, groups, tokens, lockouts and social-auth links;
no page shows a token string to anyone.
"""

from typing import Any

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist import admin as token_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from social_django import admin as social_admin
from social_django.models import Association, Nonce, UserSocialAuth

from accounts.models import Organization, SignInFailureStreak, User
from accounts.onboarding import user_sync_admin_access
from pms.admin import PlatformAdmin, ScopedAdmin, replace_registration

_PERSONAL = ("Personal info", {"fields": ("first_name", "last_name", "email")})
_DATES = ("Important dates", {"fields": ("last_login", "date_joined")})
CLINIC_FIELDSETS = (
    (None, {"fields": ("username", "password")}),
    _PERSONAL,
    ("Clinic", {"fields": ("role", "is_active", "email_verified")}),
    _DATES,
)
PLATFORM_FIELDSETS = (
    (None, {"fields": ("username", "password")}),
    _PERSONAL,
    ("Access", {"fields": ("is_active", "is_superuser")}),
    ("Clinic", {"fields": ("organization", "role", "email_verified")}),
    _DATES,
)
_NEW_LOGIN = ("username", "usable_password", "password1", "password2")
CLINIC_ADD_FIELDSETS = (
    (None, {"classes": ("wide",), "fields": _NEW_LOGIN}),
    ("Clinic", {"fields": ("email", "first_name", "last_name", "role")}),
)
PLATFORM_ADD_FIELDSETS = (
    (None, {"classes": ("wide",), "fields": _NEW_LOGIN}),
    ("Clinic", {"fields": ("organization", "email", "first_name", "last_name", "role")}),
)


@admin.register(User)
class UserAdmin(ScopedAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "role", "organization", "is_active", "is_staff"]
    list_filter = ["role", "organization", "is_active", "is_staff", "is_superuser"]
    search_fields = ["username", "email", "first_name", "last_name"]
    list_select_related = ["organization"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        platform = request.user.is_superuser
        if obj is None:
            return PLATFORM_ADD_FIELDSETS if platform else CLINIC_ADD_FIELDSETS
        return PLATFORM_FIELDSETS if platform else CLINIC_FIELDSETS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if request.user.is_superuser:
            return ("last_login", "date_joined")
        return ("email_verified", "last_login", "date_joined")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "organization" in form.base_fields:
            # A user added here is a clinic user: the database refuses one without a clinic.
            form.base_fields["organization"].required = True
        return form

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        actor: Any = request.user
        if not actor.is_superuser:
            obj.organization_id = actor.organization_id
            obj.is_superuser = False
        if obj.is_superuser:
            obj.is_staff = True
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user_sync_admin_access(user=form.instance)


@admin.register(Organization)
class OrganizationAdmin(PlatformAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(SignInFailureStreak)
class SignInFailureStreakAdmin(PlatformAdmin):
    """Accounts on their way to (or in) the account lock; delete a row to lift it."""

    list_display = ["user", "failures", "last_failure_at"]
    fields = readonly_fields = ("user", "failures", "last_failure_at")
    list_select_related = ["user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OutstandingTokenAdmin(PlatformAdmin, token_admin.OutstandingTokenAdmin):
    # The token string is a credential: only its id (jti) is shown.
    fields = readonly_fields = ("jti", "user", "created_at", "expires_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields


class BlacklistedTokenAdmin(PlatformAdmin, token_admin.BlacklistedTokenAdmin):
    fields = readonly_fields = (
        "token_jti",
        "token_user",
        "token_created_at",
        "token_expires_at",
        "blacklisted_at",
    )
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the entry would make a revoked refresh token work again.
        return False


class UserSocialAuthAdmin(PlatformAdmin, social_admin.UserSocialAuthOption):
    # extra_data may hold the provider's access token.
    exclude = ("extra_data",)


class AssociationAdmin(PlatformAdmin, social_admin.AssociationOption):
    exclude = ("secret",)


class AccessAttemptAdmin(PlatformAdmin, axes_admin.AccessAttemptAdmin):
    # Its "clean up expired attempts" action needs request attributes that only axes' login
    # handling sets: on an admin page it fails. Expired attempts stop counting on their own.
    actions = None


replace_registration(Group, type("GroupAdmin", (PlatformAdmin, DjangoGroupAdmin), {}))
replace_registration(OutstandingToken, OutstandingTokenAdmin)
replace_registration(BlacklistedToken, BlacklistedTokenAdmin)
replace_registration(UserSocialAuth, UserSocialAuthAdmin)
replace_registration(Nonce, type("NonceAdmin", (PlatformAdmin, social_admin.NonceOption), {}))
replace_registration(Association, AssociationAdmin)
replace_registration(AccessAttempt, AccessAttemptAdmin)
replace_registration(
    AccessLog, type("AccessLogAdmin", (PlatformAdmin, axes_admin.AccessLogAdmin), {})
)
replace_registration(
    AccessFailureLog,
    type("AccessFailureLogAdmin", (PlatformAdmin, axes_admin.AccessFailureLogAdmin), {}),
)
