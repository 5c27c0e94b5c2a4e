import uuid

from django.conf import settings
from django.db import models

from pms.scoping import OrganizationScopedQuerySet


class ExportStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class ExportJob(models.Model):
    """A Bulk Data export (`$export`): who asked for what, how far it is, and its files.

    `key` names the job in the status and file URLs: not guessable (those URLs are still
    useless without the requester's token). Tasks take the integer id.
    """

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # None for a platform operator's export of every clinic.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, null=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # The kick-off URL as sent (the manifest's `request`) and the base of the resources' urls.
    request_url = models.TextField()
    base_url = models.CharField(max_length=255)
    # The Group/{organization} export narrows to that clinic; Patient/$export takes the caller's.
    group_organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, null=True, related_name="+"
    )
    types = models.JSONField()
    since = models.DateTimeField(null=True)
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.ACCEPTED
    )
    # Percent of the rows written, for `X-Progress`.
    progress = models.PositiveSmallIntegerField(default=0)
    # The run that holds the job and when it last wrote a chunk: a run silent for long has lost
    # its worker, and the task's next delivery takes the job over (fhir/export.py).
    run_key = models.UUIDField(null=True)
    heartbeat_at = models.DateTimeField(null=True)
    patient_count = models.PositiveIntegerField(null=True)
    # [{"type": "Patient", "object_name": "...", "count": 10000}, ...]
    output = models.JSONField(default=list)
    transaction_time = models.DateTimeField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True)
    expires_at = models.DateTimeField(null=True)

    objects = OrganizationScopedQuerySet.as_manager()
    # django-stubs does not derive these for this model.
    organization_id: int | None
    group_organization_id: int | None

    class Meta:
        indexes = [models.Index(fields=["status", "expires_at"], name="fhir_export_expiry_idx")]

    def __str__(self) -> str:
        return f"Export {self.pk}"
