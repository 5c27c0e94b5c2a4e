"""Who sees which patient: every patient read in the project goes through here.

The rows start from the one scoping rule, `Patient.objects.visible_to(user)` (pms/scoping.py):
a clinic's own patients, every clinic's for a superuser. Archived patients are visible only to
organization administrators who ask for them. Anything else is "not found", never "forbidden",
so existence is not confirmed.
"""

from typing import Any

from django.db import connections
from django.db.models import Q, QuerySet
from rest_framework.exceptions import NotFound

from accounts.models import Role
from patient.duplicates import Candidate, Identity, find_duplicates
from patient.models import Patient, PatientCount, PatientMerge
from pms.permissions import user_has_role

# Fields whose changes the history reports (names only, never values). `version` and
# `updated_at` change on every save and say nothing.
HISTORY_FIELDS = (
    "mrn",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "birth_date_estimated",
    "gender",
    "address",
    "notes",
    "is_active",
    "archived_at",
    "merged_into",
)
HISTORY_TYPES = {"+": "created", "~": "updated", "-": "deleted"}


PATIENT_COLUMNS = tuple(field.name for field in Patient._meta.concrete_fields)


def can_see_archived(user: Any) -> bool:
    return user_has_role(user, {Role.ADMIN})


def narrow_patients(
    patients: QuerySet[Patient],
    *,
    user: Any,
    include_archived: bool = False,
    include_merged: bool = False,
) -> QuerySet[Patient]:
    """Of the patients visible to `user`, those the API lists, newest first.

    `include_archived` counts for admins only. `include_merged` keeps the patients archived by
    a merge, whose detail tells everyone where their chart went (`merged_into`).
    """
    if not (include_archived and can_see_archived(user)):
        shown = Q(is_active=True)
        if include_merged:
            shown |= Q(merged_into__isnull=False)
        patients = patients.filter(shown)
    # Of the creator only what the API shows: not every user column (password hash included)
    # for every row of every page.
    return (
        patients.select_related("created_by")
        .only(*PATIENT_COLUMNS, "created_by__id", "created_by__username")
        .order_by("-created_at", "-id")
    )


def patient_list(*, user: Any, include_archived: bool = False) -> QuerySet[Patient]:
    """The patients `user` may see, newest first. `include_archived` counts for admins only."""
    return narrow_patients(
        Patient.objects.visible_to(user), user=user, include_archived=include_archived
    )


def patient_count(*, user: Any, include_archived: bool = False) -> int | None:
    """The exact size of `patient_list(user=..., include_archived=...)` from the
    per-organization counters (one indexed read, whatever the table size), or None where no
    counter is kept (SQLite; an organization without patients yet) and the rows must be counted."""
    if connections[PatientCount.objects.db].vendor != "postgresql":
        return None
    if not getattr(user, "is_authenticated", False):
        return 0
    counts = PatientCount.objects.visible_to(user)
    archived = include_archived and can_see_archived(user)
    rows = list(counts.values_list("active", "archived"))
    if not rows:
        return None
    return sum(active + (archived_count if archived else 0) for active, archived_count in rows)


def patient_get(
    *, user: Any, pk: Any, include_archived: bool = False, include_merged: bool = False
) -> Patient:
    """One patient `user` may see; `NotFound` for a foreign, archived or missing one."""
    patients = narrow_patients(
        Patient.objects.visible_to(user),
        user=user,
        include_archived=include_archived,
        include_merged=include_merged,
    )
    try:
        return patients.get(pk=pk)
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise NotFound("Patient not found.") from None


def patient_duplicates(*, patient: Patient) -> list[Candidate]:
    """The likely duplicates of an existing patient among their clinic's active patients."""
    others = Patient.objects.filter(organization_id=patient.organization_id, is_active=True)
    return find_duplicates(others, Identity.of(patient), exclude_pk=patient.pk)


def patient_merge_in_force(*, user: Any, target: Patient, source_pk: Any) -> PatientMerge:
    """The merge of patient `source_pk` into `target` that is not undone; NotFound otherwise."""
    merges = PatientMerge.objects.visible_to(user).filter(target=target, undone_at__isnull=True)
    try:
        return merges.select_related("target", "source").get(source_id=source_pk)
    except (PatientMerge.DoesNotExist, ValueError, TypeError):
        raise NotFound("No merge of this patient into this one is in force.") from None


def patient_documents_summary(*, patient: Patient) -> dict[str, Any]:
    """The documents block of the patient summary. Filled by the documents app."""
    # Imported here: the documents app depends on this module.
    from document.selectors import document_summary_for_patient

    return document_summary_for_patient(patient=patient)


def patient_history(*, user: Any, pk: Any, include_archived: bool = False) -> QuerySet[Any]:
    """The versions of one visible patient, newest first."""
    patient = patient_get(user=user, pk=pk, include_archived=include_archived)
    return patient.history.select_related("history_user").order_by("-history_date", "-history_id")


def patient_history_entries(*, records: list[Any], history: QuerySet[Any]) -> list[dict[str, Any]]:
    """`records` (a page of `history`) with the names of the fields each version changed.

    Each version is compared with the one before it: the next record on the page, and for the
    page's last record one more query for its predecessor.
    """
    if not records:
        return []
    last = records[-1]
    before_page = (
        history.filter(
            Q(history_date__lt=last.history_date)
            | Q(history_date=last.history_date, history_id__lt=last.history_id)
        )
        .select_related(None)
        .first()
    )
    previous_records = [*records[1:], before_page]
    return [
        {
            "version": record.version,
            "history_date": record.history_date,
            "history_type": HISTORY_TYPES[record.history_type],
            "user": record.history_user,
            "changed_fields": _changed_fields(record, previous),
            "reason": record.history_change_reason or "",
        }
        for record, previous in zip(records, previous_records, strict=True)
    ]


def _changed_fields(record: Any, previous: Any) -> list[str]:
    if record.history_type == "-":
        return []
    if previous is None:
        # Creation: the fields it was created with.
        return [
            field for field in HISTORY_FIELDS if getattr(record, field) not in ("", None, False)
        ]
    return [field for field in HISTORY_FIELDS if getattr(record, field) != getattr(previous, field)]
