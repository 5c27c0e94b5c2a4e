from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from pms.scoping import OrganizationScopedQuerySet


class AppendOnlyError(Exception):
    """Audit events are never changed or removed."""


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"


class Source(models.TextChoices):
    """The door a request came through: the REST API or the Django admin."""

    API = "api", "API"
    ADMIN = "admin", "Django admin"


class AuditEventQuerySet(OrganizationScopedQuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be updated.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be deleted.")


class AuditEvent(models.Model):
    """One access to the API, as seen by whoever must answer "who saw this patient".

    One row per request: `patient_ids` lists every patient the request concerned, all of a list
    or search page included, so recording costs one single-row INSERT whatever the page size.
    `details` holds names (fields changed, filters used), never values.

    Foreign keys carry no database constraint: deleting a user must never rewrite the trail
    (the table refuses UPDATE), and the username at the time is kept beside the id.
    """

    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64, blank=True)
    # The patients concerned; on PostgreSQL a GIN index (jsonb_path_ops) serves "who saw patient N".
    patient_ids = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField()
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-occurred_at"], name="audit_org_time"),
            models.Index(fields=["organization", "actor", "-occurred_at"], name="audit_org_actor"),
            models.Index(
                fields=["organization", "action", "-occurred_at"], name="audit_org_action"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be deleted.")
