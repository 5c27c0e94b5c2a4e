"""Merging two records of one patient, and undoing it exactly."""

from datetime import date
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from audit.models import AuditEvent
from document.models import Document
from patient import services
from patient.models import Patient, PatientAlias, PatientMerge
from tests.concurrency import at_once
from tests.factories import DocumentFactory, PatientFactory
from tests.patient.conftest import LIST_URL, SEARCH_URL, detail_url, error_code, ids


@pytest.fixture
def target(organization: Organization) -> Patient:
    return PatientFactory.create(
        organization=organization, full_name="John Smith", phone="+12025550111", mrn="T-1"
    )


@pytest.fixture
def source(organization: Organization) -> Patient:
    return PatientFactory.create(
        organization=organization,
        full_name="Jon Smith",
        phone="+12025550122",
        mrn="OLD-7",
        date_of_birth=date(1980, 3, 4),
    )


def merge(client: APIClient, target: Patient, source: Patient, **body: Any) -> Any:
    return client.post(detail_url(target, "merge/"), {"source": source.pk, **body}, format="json")


def unmerge(client: APIClient, target: Patient, source: Patient) -> Any:
    return client.post(detail_url(target, "unmerge/"), {"source": source.pk}, format="json")


def test_a_merge_moves_documents_keeps_the_mrn_as_alias_and_archives_the_source(
    as_clinician: APIClient, target: Patient, source: Patient, clinician: User
) -> None:
    moved = DocumentFactory.create_batch(2, patient=source)
    archived_document = DocumentFactory.create(patient=source, is_active=False)
    kept = DocumentFactory.create(patient=target)

    response = as_clinician.post(
        detail_url(target, "merge/"),
        {"source": source.pk, "take": ["phone", "date_of_birth"]},
        format="json",
        HTTP_IF_MATCH='"1"',
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["moved_document_ids"] == sorted([*(d.pk for d in moved), archived_document.pk])
    assert body["taken_fields"] == ["birth_date_estimated", "date_of_birth", "phone"]
    assert response["ETag"] == '"2"'
    target.refresh_from_db()
    source.refresh_from_db()
    assert (target.phone, target.date_of_birth) == ("+12025550122", date(1980, 3, 4))
    assert (source.is_active, source.merged_into_id) == (False, target.pk)
    assert set(Document.objects.filter(patient=target)) == {*moved, archived_document, kept}
    assert PatientAlias.objects.get(patient=target).mrn == "OLD-7"
    # History: a version of each, saying why.
    assert target.history.first().history_change_reason == f"merge of {source.pk}"
    assert source.history.first().history_change_reason == f"merged into {target.pk}"
    assert source.history.first().history_user == clinician
    latest = as_clinician.get(detail_url(target, "history/")).json()["results"][0]
    assert latest["reason"] == f"merge of {source.pk}"
    assert latest["changed_fields"] == ["phone", "date_of_birth"]
    event = AuditEvent.objects.get(action="patient.merge")
    assert (event.status_code, sorted(event.patient_ids)) == (200, sorted([target.pk, source.pk]))
    assert event.details["fields"] == ["source", "take"]


def test_after_a_merge_the_old_mrn_finds_the_target_and_the_source_says_where_it_went(
    as_staff: APIClient, target: Patient, source: Patient, clinician: User
) -> None:
    services.patient_merge(actor=clinician, target=target, source=source)

    assert ids(as_staff.get(LIST_URL, {"search": "old-7"})) == [target.pk]
    assert ids(as_staff.get(LIST_URL, {"mrn": "OLD-7"})) == [target.pk]
    assert ids(as_staff.get(SEARCH_URL, {"q": "OLD-7"})) == [target.pk]
    assert source.pk not in ids(as_staff.get(LIST_URL))
    detail = as_staff.get(detail_url(source))
    assert detail.status_code == 200
    assert (detail.json()["merged_into"], detail.json()["is_active"]) == (target.pk, False)
    # Only the detail answers for a merged record: it cannot be changed.
    assert as_staff.patch(detail_url(source), {"notes": "x"}, format="json").status_code == 404


def test_unmerge_undoes_the_merge_and_new_documents_stay(
    as_clinician: APIClient, target: Patient, source: Patient, clinician: User
) -> None:
    moved = DocumentFactory.create(patient=source)
    original_phone = target.phone
    merge(as_clinician, target, source, take=["phone"])
    added_since = DocumentFactory.create(patient=target)

    response = unmerge(as_clinician, target, source)

    assert response.status_code == 200, response.content
    assert response.json()["undone_at"] is not None
    target.refresh_from_db()
    source.refresh_from_db()
    assert response["ETag"] == f'"{target.version}"'
    assert target.version == 3  # the merge's version, then the unmerge's
    assert (source.is_active, source.merged_into_id, source.archived_at) == (True, None, None)
    assert target.phone == original_phone
    assert list(Document.objects.filter(patient=source)) == [moved]
    assert list(Document.objects.filter(patient=target)) == [added_since]
    assert not PatientAlias.objects.exists()
    assert target.history.first().history_change_reason == f"unmerge of {source.pk}"
    assert source.history.first().history_change_reason == f"unmerged from {target.pk}"
    event = AuditEvent.objects.get(action="patient.unmerge")
    assert sorted(event.patient_ids) == sorted([target.pk, source.pk])
    # Undone once: a second undo finds no merge in force.
    again = unmerge(as_clinician, target, source)
    assert (again.status_code, error_code(again)) == (404, "not_found")


def test_a_field_edited_after_the_merge_keeps_the_newer_value_on_unmerge(
    as_clinician: APIClient, target: Patient, source: Patient, clinician: User
) -> None:
    merge(as_clinician, target, source, take=["phone", "full_name"])
    as_clinician.patch(detail_url(target), {"phone": "+12025550199"}, format="json")

    assert unmerge(as_clinician, target, source).status_code == 200

    target.refresh_from_db()
    assert (target.phone, target.full_name) == ("+12025550199", "John Smith")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("archive", "document_archive_changed"),
        ("move", "document_moved"),
    ],
)
def test_unmerge_refuses_when_a_moved_document_changed(
    as_clinician: APIClient,
    target: Patient,
    source: Patient,
    organization: Organization,
    change: str,
    reason: str,
) -> None:
    document = DocumentFactory.create(patient=source)
    merge(as_clinician, target, source)
    if change == "archive":
        Document.objects.filter(pk=document.pk).update(is_active=False)
    else:
        elsewhere = PatientFactory.create(organization=organization)
        Document.objects.filter(pk=document.pk).update(patient=elsewhere)

    response = unmerge(as_clinician, target, source)

    assert response.status_code == 409
    assert error_code(response) == "merge_changed"
    assert response.json()["error"]["details"] == {
        "reason": reason,
        "document_ids": [document.pk],
    }
    source.refresh_from_db()
    assert (source.is_active, source.merged_into_id) == (False, target.pk)
    assert PatientMerge.objects.get().undone_at is None


def test_merging_a_patient_of_another_clinic_is_not_found(
    as_clinician: APIClient, target: Patient, foreign_patient: Patient
) -> None:
    into_ours = merge(as_clinician, target, foreign_patient)
    into_theirs = merge(as_clinician, foreign_patient, target)

    for response in (into_ours, into_theirs):
        assert (response.status_code, error_code(response)) == (404, "not_found")
    foreign_patient.refresh_from_db()
    assert foreign_patient.is_active
    assert not PatientMerge.objects.exists()


def test_merging_a_patient_into_themself_is_a_validation_error(
    as_clinician: APIClient, target: Patient
) -> None:
    response = merge(as_clinician, target, target)

    assert (response.status_code, error_code(response)) == (400, "validation_error")
    assert "source" in response.json()["error"]["details"]
    target.refresh_from_db()
    assert (target.is_active, target.version) == (True, 1)


def test_a_stale_if_match_on_the_target_is_a_precondition_failure(
    as_clinician: APIClient, target: Patient, source: Patient
) -> None:
    as_clinician.patch(detail_url(target), {"notes": "changed"}, format="json")

    response = as_clinician.post(
        detail_url(target, "merge/"), {"source": source.pk}, format="json", HTTP_IF_MATCH='"1"'
    )

    assert (response.status_code, error_code(response)) == (412, "precondition_failed")
    source.refresh_from_db()
    assert source.is_active
    assert not PatientMerge.objects.exists()


def test_staff_may_not_merge(as_staff: APIClient, target: Patient, source: Patient) -> None:
    response = merge(as_staff, target, source)

    assert (response.status_code, error_code(response)) == (403, "permission_denied")
    assert not PatientMerge.objects.exists()


def test_an_admin_cannot_restore_a_merged_record_behind_the_merge(
    as_admin: APIClient, target: Patient, source: Patient, clinician: User
) -> None:
    services.patient_merge(actor=clinician, target=target, source=source)

    response = as_admin.post(detail_url(source, "restore/"))

    assert (response.status_code, error_code(response)) == (409, "patient_merged")
    source.refresh_from_db()
    assert not source.is_active


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_concurrent_merges_of_one_source_have_one_winner_and_no_half_state(
    organization: Organization, clinician: User, client_for: Any
) -> None:
    source = PatientFactory.create(organization=organization)
    targets = PatientFactory.create_batch(2, organization=organization)
    documents = DocumentFactory.create_batch(3, patient=source)

    def run(index: int) -> int:
        return merge(client_for(clinician), targets[index], source).status_code

    statuses = sorted(at_once(2, run))

    assert statuses == [200, 404]
    merge_row = PatientMerge.objects.get()
    winner = merge_row.target
    assert set(Document.objects.filter(patient=winner)) == set(documents)
    assert PatientAlias.objects.get().patient == winner
    source.refresh_from_db()
    assert source.merged_into == winner
    loser = next(t for t in targets if t.pk != winner.pk)
    loser.refresh_from_db()
    assert loser.version == 1
    assert not Document.objects.filter(patient=loser).exists()


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_merges_of_a_pair_in_both_directions_at_once_do_not_deadlock(
    organization: Organization, clinician: User, client_for: Any
) -> None:
    first, second = PatientFactory.create_batch(2, organization=organization)
    pairs = [(first, second), (second, first)]

    statuses = sorted(at_once(2, lambda i: merge(client_for(clinician), *pairs[i]).status_code))

    assert statuses == [200, 404]
    assert PatientMerge.objects.count() == 1
    assert Patient.objects.filter(is_active=True).count() == 1
