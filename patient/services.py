"""Every write to patients: create (with the duplicate check), update, archive, restore,
merge and unmerge, and MRN allocation."""

from collections.abc import Collection, Iterable
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from accounts.models import User
from document.models import Document
from patient.duplicates import Candidate, Identity, find_duplicates
from patient.models import MRNSequence, Patient, PatientAlias, PatientMerge
from pms.exceptions import Conflict, PreconditionFailed

MRN_PREFIX = "MRN-"
MRN_TAKEN = "A patient with this MRN already exists."
# The fields a merge may take from the source (`take`); a birth date brings its estimate flag.
TAKEABLE_FIELDS = ("full_name", "email", "phone", "date_of_birth", "gender", "address", "notes")


class PossibleDuplicate(Conflict):
    default_code = "possible_duplicate"
    default_detail = (
        "This patient may already be registered; see the candidates. To register them anyway, "
        'send the same body with "confirm_new": true.'
    )

    def __init__(self, candidates: list[Candidate]) -> None:
        super().__init__(details={"candidates": [c.as_details() for c in candidates]})
        self.patient_ids = [candidate.patient.pk for candidate in candidates]


class PatientMerged(Conflict):
    default_code = "patient_merged"
    default_detail = "This record was merged into another patient; undo the merge instead."


class MergeChanged(Conflict):
    default_code = "merge_changed"
    default_detail = "The merged records have changed since the merge; it cannot be undone."


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


def duplicates_of_new(*, organization_id: int, data: dict[str, Any]) -> list[Candidate]:
    """The clinic's likely duplicates of a patient about to be registered with `data`."""
    fields = _with_birth_date(data)
    new = Identity(
        full_name=fields["full_name"],
        date_of_birth=fields["date_of_birth"],
        birth_date_estimated=fields.get("birth_date_estimated", False),
        email=fields.get("email", ""),
        phone=fields.get("phone", ""),
        mrn=fields.get("mrn", ""),
    )
    return find_duplicates(active_patients_of(organization_id), new)


def active_patients_of(organization_id: int) -> Any:
    return Patient.objects.filter(organization_id=organization_id, is_active=True)


@transaction.atomic
def patient_create(*, actor: User, data: dict[str, Any], confirm_new: bool = False) -> Patient:
    """Registers a patient in the actor's organization; generates the MRN when none is given.

    Unless `confirm_new`, a likely duplicate in the clinic refuses it (PossibleDuplicate).
    """
    organization_id = actor.organization_id
    if organization_id is None:
        raise PermissionDenied("Only members of an organization can register patients.")
    fields = _with_birth_date(data)
    mrn = fields.pop("mrn", "")
    if mrn and Patient.objects.filter(organization_id=organization_id, mrn=mrn).exists():
        raise ValidationError({"mrn": [MRN_TAKEN]})
    if not confirm_new:
        candidates = duplicates_of_new(organization_id=organization_id, data=data)
        if candidates:
            raise PossibleDuplicate(candidates)
    if not mrn:
        mrn = mrn_allocate(organization_id)
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
    """Brings an archived patient back; restoring an active patient changes nothing. A record
    archived by a merge comes back only by unmerge, with its documents."""
    if not _claim(patient, is_active=False):
        return _reload(patient)
    patient = _reload(patient)
    if patient.merged_into_id is not None:
        raise PatientMerged()
    patient.is_active = True
    patient.archived_at = None
    patient._history_user = actor
    patient.save()
    return patient


def _lock(*patients: Patient) -> dict[int, Patient]:
    """Locks the rows in id order, so two merges of the same pair in opposite directions wait
    for each other instead of deadlocking; returns them as committed now."""
    locked = Patient.objects.select_for_update().filter(pk__in=[p.pk for p in patients])
    return {patient.pk: patient for patient in locked.order_by("pk")}


def _save_version(patient: Patient, *, actor: User, reason: str) -> None:
    """A new version (and history row) even when no field changed: the record says why."""
    patient._history_user = actor
    patient._change_reason = reason  # type: ignore[attr-defined]
    patient.save()


def _as_json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _from_json(field: str, value: Any) -> Any:
    return date.fromisoformat(value) if field == "date_of_birth" and value else value


@transaction.atomic
def patient_merge(
    *,
    actor: User,
    target: Patient,
    source: Patient,
    take: Iterable[str] = (),
    expected_versions: Collection[int] | None = None,
) -> PatientMerge:
    """Joins `source`'s chart to `target`'s: moves every document of the source, copies the
    `take` fields, keeps the source's MRN (and aliases) as aliases of the target, and archives
    the source with `merged_into`. Everything it changes is recorded so unmerge can undo it."""
    if target.pk == source.pk:
        raise ValidationError({"source": ["A patient cannot be merged into themself."]})
    rows = _lock(target, source)
    target, source = rows.get(target.pk), rows.get(source.pk)  # type: ignore[assignment]
    if target is None or source is None or not (target.is_active and source.is_active):
        raise NotFound("Patient not found.")
    if expected_versions is not None and target.version not in expected_versions:
        raise PreconditionFailed()
    now = timezone.now()
    documents = list(
        Document.objects.filter(patient=source).order_by("pk").values_list("pk", "is_active")
    )
    Document.objects.filter(pk__in=[pk for pk, _ in documents]).update(
        patient=target, updated_at=now
    )
    taken = [name for name in TAKEABLE_FIELDS if name in set(take)]
    if "date_of_birth" in taken:
        taken.append("birth_date_estimated")
    previous = {name: _as_json(getattr(target, name)) for name in taken}
    for name in taken:
        setattr(target, name, getattr(source, name))
    merge = PatientMerge.objects.create(
        organization_id=target.organization_id,
        target=target,
        source=source,
        moved_documents=[{"id": pk, "is_active": active} for pk, active in documents],
        moved_alias_ids=list(
            PatientAlias.objects.filter(patient=source).values_list("pk", flat=True)
        ),
        taken_fields=previous,
        merged_by=actor,
        merged_at=now,
    )
    PatientAlias.objects.filter(pk__in=merge.moved_alias_ids).update(patient=target)
    PatientAlias.objects.create(
        organization_id=target.organization_id, patient=target, mrn=source.mrn, merge=merge
    )
    source.is_active = False
    source.archived_at = now
    source.merged_into = target
    _save_version(source, actor=actor, reason=f"merged into {target.pk}")
    _save_version(target, actor=actor, reason=f"merge of {source.pk}")
    return merge


@transaction.atomic
def patient_unmerge(*, actor: User, merge: PatientMerge) -> PatientMerge:
    """Undoes `merge` exactly: the source comes back with the documents the merge moved
    (documents added to the target since stay), the target gets back the fields it took, and
    the aliases go. MergeChanged when a moved record changed so that moving it back is unsafe:

    - `target_archived`: the target is archived (or merged on) since;
    - `source_changed`: the source is no longer archived by this merge (an admin restored it);
    - `document_moved`: a moved document belongs to another patient now;
    - `document_archive_changed`: a moved document was archived or restored since, a decision
      made in the target's chart that moving it back would hide.
    """
    rows = _lock(merge.target, merge.source)
    merge = PatientMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise NotFound("No merge of this patient into this one is in force.")
    target, source = rows[merge.target_id], rows[merge.source_id]
    if not target.is_active:
        raise MergeChanged(details={"reason": "target_archived"})
    if source.is_active or source.merged_into_id != target.pk:
        raise MergeChanged(details={"reason": "source_changed"})
    moved = {entry["id"]: entry["is_active"] for entry in merge.moved_documents}
    current = Document.objects.filter(pk__in=moved).values_list("pk", "patient_id", "is_active")
    now_rows = {pk: (owner, active) for pk, owner, active in current}
    # A pending upload the stale-upload purge removed is not a record of care: nothing to move.
    elsewhere = sorted(pk for pk, (owner, _) in now_rows.items() if owner != target.pk)
    if elsewhere:
        raise MergeChanged(details={"reason": "document_moved", "document_ids": elsewhere})
    toggled = sorted(pk for pk, (_, active) in now_rows.items() if active != moved[pk])
    if toggled:
        raise MergeChanged(details={"reason": "document_archive_changed", "document_ids": toggled})
    now = timezone.now()
    Document.objects.filter(pk__in=now_rows).update(patient=source, updated_at=now)
    PatientAlias.objects.filter(merge=merge).delete()
    PatientAlias.objects.filter(pk__in=merge.moved_alias_ids).update(patient=source)
    for name, value in merge.taken_fields.items():
        # A field edited in the target since the merge keeps the newer value.
        if _as_json(getattr(target, name)) == _as_json(getattr(source, name)):
            setattr(target, name, _from_json(name, value))
    source.is_active = True
    source.archived_at = None
    source.merged_into = None
    _save_version(source, actor=actor, reason=f"unmerged from {target.pk}")
    _save_version(target, actor=actor, reason=f"unmerge of {source.pk}")
    merge.undone_at = now
    merge.undone_by = actor
    merge.save(update_fields=["undone_at", "undone_by"])
    merge.target, merge.source = target, source  # as saved, for the caller's ETag
    return merge
