from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accounts.models import Organization
from pms.scoping import OrganizationScopedQuerySet


class Gender(models.TextChoices):
    MALE = "M", "Male"
    FEMALE = "F", "Female"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


def age_on(date_of_birth: date, today: date) -> int:
    """Completed years; someone born on 29 February turns a year older on 1 March."""
    had_birthday = (today.month, today.day) >= (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - (0 if had_birthday else 1)


class PatientQuerySet(OrganizationScopedQuerySet["Patient"]):
    """Patients; the rows of a ranked search also carry what they rank (`ranked_from`: the rows
    searched and the term), which its pagination reads to rank no more than a page needs
    (patient/search.py)."""

    ranked_from: tuple[models.QuerySet["Patient"], str] | None = None

    def _clone(self) -> "PatientQuerySet":
        clone: PatientQuerySet = super()._clone()  # type: ignore[misc]
        clone.ranked_from = self.ranked_from
        return clone


class Patient(models.Model):
    """A person the clinic cares for. Never hard-deleted through the API: archived instead."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="patients",
        # Every index in Meta leads with organization; a lone one would only cost writes.
        db_index=False,
    )
    mrn = models.CharField("MRN", max_length=32, help_text="Medical record number.")
    full_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=16, blank=True, help_text="E.164, e.g. +12025550143.")
    date_of_birth = models.DateField()
    birth_date_estimated = models.BooleanField(
        default=False, help_text="Derived from an age (1 January of the birth year)."
    )
    gender = models.CharField(max_length=1, choices=Gender.choices, default=Gender.UNKNOWN)
    address = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="False once archived.")
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped on every save; the ETag."
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="Set on a patient archived by a merge: the record that holds their chart now.",
        # Indexed only where set (Meta): the foreign-key check of every patient delete looks
        # for rows merged into it, a scan of the table without an index.
        db_index=False,
    )

    objects = PatientQuerySet.as_manager()
    history = HistoricalRecords()
    # Set by the services: django-simple-history records this user as the author of a version.
    _history_user: Any

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "mrn"],
                name="patient_mrn_unique_per_org",
                violation_error_message="A patient with this MRN already exists.",
            ),
        ]
        # Every list query is `organization = ? AND is_active = ?` plus one ordering or filter:
        # one B-tree per ordering/filter, led by the scope, with `id` as the tie-breaker the
        # API appends for stable pages. The trigram GIN indexes for search live in migration
        # 0002 (PostgreSQL only).
        indexes = [
            models.Index(
                fields=["organization", "is_active", "created_at", "id"],
                name="patient_org_created_idx",
            ),
            models.Index(
                fields=["organization", "is_active", "updated_at", "id"],
                name="patient_org_updated_idx",
            ),
            models.Index(
                fields=["organization", "is_active", "full_name", "id"],
                name="patient_org_name_idx",
            ),
            models.Index(
                fields=["organization", "is_active", "date_of_birth", "id"],
                name="patient_org_dob_idx",
            ),
            models.Index(
                fields=["organization", "is_active", "mrn", "id"],
                name="patient_org_mrn_idx",
            ),
            models.Index(
                fields=["organization", "is_active", "gender", "created_at", "id"],
                name="patient_org_gender_idx",
            ),
            # The duplicate check's exact matches (patient/duplicates.py) and merged records;
            # built concurrently by migration 0006.
            models.Index(fields=["organization", "phone"], name="patient_org_phone_idx"),
            models.Index("organization", Upper("email"), name="patient_org_email_upper_idx"),
            models.Index(
                fields=["merged_into"],
                condition=models.Q(merged_into__isnull=False),
                name="patient_merged_into_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Patient {self.mrn}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every change, from the API or the Django admin, is a new version (the ETag).
        if not self._state.adding:
            self.version += 1
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "version", "updated_at"}
        super().save(*args, **kwargs)

    @property
    def age(self) -> int:
        return age_on(self.date_of_birth, timezone.localdate())


class MRNSequence(models.Model):
    """The last generated MRN number of an organization; its row is the allocation lock."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"MRN sequence of organization {self.organization_id}"


class PatientCount(models.Model):
    """How many active and archived patients an organization has: the `count` of an unfiltered
    patient list without counting a million rows.

    On PostgreSQL a trigger on the patient table keeps it exact in the same transaction as every
    insert, archive, restore or delete (migration 0003), whatever wrote the row. Elsewhere it
    stays empty and lists count their rows.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    active = models.BigIntegerField(default=0)
    archived = models.BigIntegerField(default=0)

    objects = OrganizationScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Patient count of organization {self.organization_id}"


class PatientMerge(models.Model):
    """One merge of `source` into `target`, with what it changed, so unmerge can undo exactly
    that: the documents it moved (and whether each was archived then), the aliases it moved,
    and the target's values of the fields it took from the source."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    # [{"id": document id, "is_active": bool at merge time}]
    moved_documents = models.JSONField(default=list)
    moved_alias_ids = models.JSONField(default=list)
    # {field: the target's value before the merge, as JSON}
    taken_fields = models.JSONField(default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    merged_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = OrganizationScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            # A patient is the source of at most one merge in force.
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(undone_at__isnull=True),
                name="patient_merge_one_open_per_source",
            ),
        ]

    def __str__(self) -> str:
        return f"Merge of patient {self.source_id} into {self.target_id}"


class PatientAlias(models.Model):
    """A former MRN of a patient (the MRN of a record merged into theirs): list `search`,
    `/search/` and the `mrn` filter find the patient by it."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="aliases")
    mrn = models.CharField("MRN", max_length=32)
    merge = models.ForeignKey(PatientMerge, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "mrn"], name="patient_alias_mrn_unique_per_org"
            ),
        ]
        # Searches look aliases up by MRN alone, once per query (`pk IN (...)`), and let the
        # patient query apply the clinic.
        indexes = [models.Index(fields=["mrn"], name="patient_alias_mrn_idx")]
        verbose_name_plural = "patient aliases"

    def __str__(self) -> str:
        return f"Alias {self.mrn}"
