from django.conf import settings
from django.db import models
from django.utils import timezone

from pms.scoping import OrganizationScopedQuerySet


class OTPCodeQuerySet(OrganizationScopedQuerySet["OTPCode"]):
    organization_lookup = "user__organization_id"


class Purpose(models.TextChoices):
    LOGIN = "login", "Sign in"
    VERIFY_EMAIL = "verify_email", "Email verification"
    PASSWORD_RESET = "password_reset", "Password reset"


class OTPCode(models.Model):
    """A one-time code emailed to a user. Only its HMAC is stored, never the code."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="otp_codes"
    )
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    code_hmac = models.CharField(max_length=64, help_text="HMAC-SHA256 of purpose, user and code.")
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Verification tries used; the code is dead at OTP_MAX_ATTEMPTS."
    )
    consumed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OTPCodeQuerySet.as_manager()

    class Meta:
        verbose_name = "one-time code"
        ordering = ["-created_at"]
        constraints = [
            # A new code replaces the old one: one row per user and purpose at a time.
            models.UniqueConstraint(fields=["user", "purpose"], name="otp_code_one_per_purpose"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="otp_code_expires_idx")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} code #{self.pk}"


class OTPAddressLimit(models.Model):
    """Code-request counters of one email address, whether or not an account has it.

    The address is kept only as an HMAC, so the table reveals neither the addresses nor which of
    them belong to accounts.
    """

    address_hmac = models.CharField(max_length=64, unique=True)
    last_requested_at = models.DateTimeField()
    window_started_at = models.DateTimeField(help_text="Start of the current one-hour window.")
    requests_in_window = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "one-time code address limit"

    def __str__(self) -> str:
        return f"address limit #{self.pk}"


class OTPDelivery(models.Model):
    """One code request on its way to a mailbox: what the delivery task needs, and its marker.

    Every request gets a row, known address or not, so a request does the same work either way.
    The task issues the code and sends it; `sent_at` is set as soon as the mail server accepted
    the message and is checked before sending, so a task that runs again sends nothing twice.
    The row holds neither the address nor the code.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when no active account has the address: nothing is sent.",
    )
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    requested_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Sending attempts so far.")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "one-time code delivery"
        indexes = [
            models.Index(fields=["user", "purpose"], name="otp_delivery_user_idx"),
            models.Index(fields=["requested_at"], name="otp_delivery_requested_idx"),
        ]

    def __str__(self) -> str:
        return f"code delivery #{self.pk}"
