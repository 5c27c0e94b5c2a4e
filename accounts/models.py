from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Lower

from pms.scoping import OrganizationScopedQuerySet


class OrganizationQuerySet(OrganizationScopedQuerySet["Organization"]):
    organization_lookup = "pk"


class Organization(models.Model):
    """A clinic. Every patient, document and (non-superuser) user belongs to one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    CLINICIAN = "clinician", "Clinician"
    STAFF = "staff", "Staff"


class UserQuerySet(OrganizationScopedQuerySet["User"]):
    pass


class ClinicUserManager(UserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    """Django's user manager (create_user, create_superuser) with `visible_to`."""


# The roles that read clinical files (document downloads) and archive records.
CLINICAL_ROLES = frozenset({Role.ADMIN, Role.CLINICIAN})


class User(AbstractUser):
    """A person who signs in. `role` decides what they may do inside their organization."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        help_text="Every clinic user has one; superusers (platform operators) have none.",
    )
    email_verified = models.BooleanField(default=False)

    objects: ClassVar[ClinicUserManager] = ClinicUserManager()

    class Meta:
        constraints = [
            # Superusers operate the platform and see every clinic; everyone else works in
            # exactly one. Scoping (pms/scoping.py) relies on it.
            models.CheckConstraint(
                condition=models.Q(is_superuser=True, organization__isnull=True)
                | models.Q(is_superuser=False, organization__isnull=False),
                name="accounts_user_superuser_xor_organization",
                violation_error_message="A superuser has no organization; every other user has "
                "one.",
            ),
            # Emails identify people for OTP and Google sign-in: unique whatever the case.
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="accounts_user_email_ci_unique",
                violation_error_message="A user with this email already exists.",
            ),
        ]

    @property
    def is_org_admin(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN


class SignInFailureStreak(models.Model):
    """The consecutive failed password sign-ins of one account, from any address.

    A successful sign-in deletes the row; at `ACCOUNT_LOCKOUT_FAILURES` the account is locked
    everywhere until its password is reset (accounts/lockout.py).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="+")
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.failures} failed sign-ins of user {self.user_id}"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` on a create (pms/idempotency.py): claimed by inserting the
    row before the request runs, completed with the response to replay.

    `response_body` is the created record as the API returned it (patient data, like the
    record itself); it is deleted with the row, at the latest 24 hours after the claim.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # The operation (method and path) and a SHA-256 of its canonical JSON body.
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    # Null while the first request runs.
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    response_headers = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]
        # The purge: keys by age.
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return f"Idempotency key {self.pk}"
