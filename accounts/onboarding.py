"""Clinics and their administrators: onboarding a clinic, and who may use the Django admin.

A clinic admin is a user with `role=admin`, `is_staff=True` and `is_superuser=False`; the model
permissions they hold in the admin come from one group, "Clinic administrators". Everyone else in
a clinic uses the API only. Superusers are platform operators (`createsuperuser`), outside every
clinic.
"""

import secrets
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Organization, Role, User

CLINIC_ADMIN_GROUP = "Clinic administrators"
# What a clinic admin may do in the Django admin, always inside their own clinic (the admin
# classes scope every page). No delete anywhere: patients and documents are archived, users
# deactivated; nothing of another clinic or of the platform (tokens, lockouts, social links).
CLINIC_ADMIN_PERMISSIONS = (
    ("accounts", "user", ("view", "add", "change")),
    ("patient", "patient", ("view", "add", "change")),
    ("document", "document", ("view", "change")),
    ("audit", "auditevent", ("view",)),
    ("otp", "otpcode", ("view",)),
)


class OnboardingError(Exception):
    """The clinic cannot be created as asked; the message says why."""


def sync_clinic_admin_group(group_model: Any = Group, permission_model: Any = Permission) -> Any:
    """Creates the group or sets its permissions to exactly CLINIC_ADMIN_PERMISSIONS.

    Takes the models so the data migration can run it with the historical ones.
    """
    group, _ = group_model.objects.get_or_create(name=CLINIC_ADMIN_GROUP)
    permissions = [
        permission_model.objects.get(
            content_type__app_label=app_label, codename=f"{action}_{model}"
        )
        for app_label, model, actions in CLINIC_ADMIN_PERMISSIONS
        for action in actions
    ]
    group.permissions.set(permissions)
    return group


def user_sync_admin_access(*, user: User) -> None:
    """A clinic user's admin access follows their role: admins are staff in the clinic admins'
    group, everyone else neither. Superusers are left as they are."""
    if user.is_superuser:
        return
    is_clinic_admin = user.role == Role.ADMIN
    if user.is_staff != is_clinic_admin:
        user.is_staff = is_clinic_admin
        user.save(update_fields=["is_staff"])
    # The migration made the group with its permissions; rebuilt only if someone deleted it.
    group = Group.objects.filter(name=CLINIC_ADMIN_GROUP).first() or sync_clinic_admin_group()
    if is_clinic_admin:
        user.groups.add(group)
    else:
        user.groups.remove(group)
    # Nobody in a clinic holds permissions of their own: only the group's.
    user.user_permissions.clear()


def generate_password() -> str:
    return secrets.token_urlsafe(18)


@transaction.atomic
def clinic_create(
    *, name: str, slug: str, admin_username: str, admin_email: str, admin_password: str
) -> tuple[Organization, User]:
    """A new clinic and its first clinic admin. Refuses a taken slug, username or email."""
    if Organization.objects.filter(slug=slug).exists():
        raise OnboardingError(f'A clinic with the slug "{slug}" already exists.')
    if User.objects.filter(username=admin_username).exists():
        raise OnboardingError(f'The username "{admin_username}" is taken.')
    if admin_email and User.objects.filter(email__iexact=admin_email).exists():
        raise OnboardingError(f'A user with the email "{admin_email}" already exists.')
    organization = Organization.objects.create(name=name, slug=slug)
    admin = User(
        username=admin_username,
        email=admin_email,
        role=Role.ADMIN,
        organization=organization,
        is_staff=True,
    )
    try:
        validate_password(admin_password, user=admin)
    except ValidationError as error:
        raise OnboardingError(" ".join(error.messages)) from None
    admin.set_password(admin_password)
    admin.save()
    user_sync_admin_access(user=admin)
    return organization, admin
