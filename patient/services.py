"""Every write to patients: create, update, archive, restore, and MRN allocation."""

from collections.abc import Collection
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from accounts.models import User
from patient.models import MRNSequence, Patient
from pms.exceptions import PreconditionFailed

MRN_PREFIX = "MRN-"
MRN_TAKEN = "A patient with this MRN already exists."


def estimated_birth_date(age: int) -> date:
    """An age without a date: 1 January of the birth year (OpenMRS), flagged as estimated."""
    return date(timezone.localdate().year - age, 1, 1)


def _with_birth_date(data: dict[str, Any]) -> dict[str, Any]:
    fields = dict(data)
    if fields.get("age") is not None:
        fields["date_of_birth"] = estimated_birth_date(fields.pop("age"))
        fields["birth_date_estimated"] = True
    elif fields.get("date_of_birth") is not None:
        fields["birth_date_estimated"] = False
    fields.pop("age", None)
    return fields


def _mrn_next_number(organization_id: int) -> int:
    sequence = MRNSequence.objects.filter(organization_id=organization_id)
    # UPDATE first: it locks the row until the transaction ends, so concurrent creates in one
    # organization get consecutive numbers and never the same one.
    if not sequence.update(last_value=F("last_value") + 1):
        try:
            with transaction.atomic():
                MRNSequence.objects.create(organization_id=organization_id, last_value=1)
            return 1
        except IntegrityError:
            # A concurrent request created the row first; take the next number after its.
            sequence.update(last_value=F("last_value") + 1)
    return sequence.values_list("last_value", flat=True).get()


def mrn_allocate(organization_id: int) -> str:
    """The next free `MRN-000001`-style number of the organization (must run in a transaction).

    Numbers a client already chose by hand are skipped.
    """
    while True:
        mrn = f"{MRN_PREFIX}{_mrn_next_number(organization_id):06d}"
        if not Patient.objects.filter(organization_id=organization_id, mrn=mrn).exists():
            return mrn


@transaction.atomic
def patient_create(*, actor: User, data: dict[str, Any]) -> Patient:
    """Registers a patient in the actor's organization; generates the MRN when none is given."""
    organization_id = actor.organization_id
    if organization_id is None:
        raise PermissionDenied("Only members of an organization can register patients.")
    fields = _with_birth_date(data)
    mrn = fields.pop("mrn", "")
    if not mrn:
        mrn = mrn_allocate(organization_id)
    elif Patient.objects.filter(organization_id=organization_id, mrn=mrn).exists():
        raise ValidationError({"mrn": [MRN_TAKEN]})
    patient = Patient(organization_id=organization_id, created_by=actor, mrn=mrn, **fields)
    patient._history_user = actor
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        # The same MRN was taken by a concurrent request between the check and the insert.
        raise ValidationError({"mrn": [MRN_TAKEN]}) from None
    return patient


def _claim(
    patient: Patient, *, is_active: bool, expected_versions: Collection[int] | None = None
) -> bool:
    """Compare-and-set in the database: locks the patient's row if it is still in the
    expected state (and, with `expected_versions`, at one of those versions).

    The no-op UPDATE holds the row lock (PostgreSQL) or the write lock (SQLite) until the
    transaction ends, so of two requests holding the same `If-Match`, exactly one passes:
    the second waits, then finds the new version and matches nothing.
    """
    rows = Patient.objects.filter(pk=patient.pk, is_active=is_active)
    if expected_versions is not None:
        rows = rows.filter(version__in=list(expected_versions))
    return bool(rows.update(version=F("version")))


def _claim_active(patient: Patient, expected_versions: Collection[int] | None) -> Patient:
    if not _claim(patient, is_active=True, expected_versions=expected_versions):
        if not Patient.objects.filter(pk=patient.pk, is_active=True).exists():
            raise NotFound("Patient not found.")
        raise PreconditionFailed()
    # Under the lock: the latest committed state is the base of this change.
    return _reload(patient)


def _reload(patient: Patient) -> Patient:
    return Patient.objects.select_related("created_by").get(pk=patient.pk)


@transaction.atomic
def patient_update(
    *,
    actor: User,
    patient: Patient,
    data: dict[str, Any],
    expected_versions: Collection[int] | None = None,
) -> Patient:
    """Applies a partial update. `expected_versions` (from If-Match): 412 unless current.

    A change that changes nothing is not a new version: the ETag stays valid.
    """
    patient = _claim_active(patient, expected_versions)
    changes = {
        field: value
        for field, value in _with_birth_date(data).items()
        if getattr(patient, field) != value
    }
    if not changes:
        return patient
    for field, value in changes.items():
        setattr(patient, field, value)
    patient._history_user = actor
    patient.save()
    return patient


@transaction.atomic
def patient_archive(
    *, actor: User, patient: Patient, expected_versions: Collection[int] | None = None
) -> Patient:
    """Soft delete: the record of care stays, hidden from everyone but admins."""
    patient = _claim_active(patient, expected_versions)
    patient.is_active = False
    patient.archived_at = timezone.now()
    patient._history_user = actor
    patient.save()
    return patient


@transaction.atomic
def patient_restore(*, actor: User, patient: Patient) -> Patient:
    """Brings an archived patient back; restoring an active patient changes nothing."""
    if not _claim(patient, is_active=False):
        return _reload(patient)
    patient = _reload(patient)
    patient.is_active = True
    patient.archived_at = None
    patient._history_user = actor
    patient.save()
    return patient
