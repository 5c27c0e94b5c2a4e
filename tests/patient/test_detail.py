"""Detail, partial update with ETag/If-Match, archive and restore."""

from datetime import date

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, User
from patient.models import Patient
from tests.patient.conftest import detail_url, error_code, error_details


def test_the_detail_carries_the_version_as_etag(as_clinician: APIClient, patient: Patient) -> None:
    response = as_clinician.get(detail_url(patient))

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body["id"] == patient.pk
    assert body["version"] == 1
    assert body["full_name"] == "John Doe"
    assert set(body) == {
        "id",
        "mrn",
        "full_name",
        "email",
        "phone",
        "date_of_birth",
        "birth_date_estimated",
        "age",
        "gender",
        "address",
        "notes",
        "is_active",
        "archived_at",
        "created_by",
        "created_at",
        "updated_at",
        "version",
        "merged_into",
    }


def test_an_unknown_patient_is_not_found(as_clinician: APIClient) -> None:
    response = as_clinician.get(detail_url(999999))

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_a_non_numeric_id_is_not_found(as_clinician: APIClient) -> None:
    response = as_clinician.get("/api/patient/patients/abc/")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_a_patch_changes_the_fields_and_bumps_version_and_etag(
    as_staff: APIClient, patient: Patient, staff_user: User
) -> None:
    response = as_staff.patch(
        detail_url(patient),
        {"phone": "+44 20 7946 0958", "notes": "Allergic to penicillin."},
        format="json",
        HTTP_IF_MATCH='"1"',
    )

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    assert response.json()["version"] == 2
    patient.refresh_from_db()
    assert patient.phone == "+442079460958"
    assert patient.notes == "Allergic to penicillin."
    assert patient.full_name == "John Doe"
    assert patient.version == 2
    assert patient.history.first().history_user == staff_user


def test_a_patch_without_if_match_is_applied_to_the_latest_version(
    as_clinician: APIClient, patient: Patient
) -> None:
    as_clinician.patch(detail_url(patient), {"notes": "first"}, format="json")
    response = as_clinician.patch(detail_url(patient), {"address": "1 Road"}, format="json")

    assert response.status_code == 200
    assert response["ETag"] == '"3"'
    patient.refresh_from_db()
    assert (patient.notes, patient.address, patient.version) == ("first", "1 Road", 3)


def test_a_patch_that_changes_nothing_keeps_the_version(
    as_clinician: APIClient, patient: Patient
) -> None:
    response = as_clinician.patch(
        detail_url(patient), {"full_name": "John  Doe"}, format="json", HTTP_IF_MATCH='"1"'
    )

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    patient.refresh_from_db()
    assert patient.version == 1
    assert patient.history.count() == 1


def test_a_patch_with_a_stale_if_match_is_refused_and_changes_nothing(
    as_clinician: APIClient, patient: Patient
) -> None:
    as_clinician.patch(detail_url(patient), {"notes": "newer"}, format="json")

    response = as_clinician.patch(
        detail_url(patient), {"notes": "lost update"}, format="json", HTTP_IF_MATCH='"1"'
    )

    assert response.status_code == 412
    assert error_code(response) == "precondition_failed"
    patient.refresh_from_db()
    assert (patient.notes, patient.version) == ("newer", 2)


@pytest.mark.parametrize("if_match", ['"2"', '"7", "2"', 'W/"2"', "2", "*"])
def test_if_match_accepts_the_current_etag_in_its_usual_spellings(
    as_clinician: APIClient, patient: Patient, if_match: str
) -> None:
    as_clinician.patch(detail_url(patient), {"notes": "v2"}, format="json")

    response = as_clinician.patch(
        detail_url(patient), {"notes": "v3"}, format="json", HTTP_IF_MATCH=if_match
    )

    assert response.status_code == 200
    assert response["ETag"] == '"3"'


@pytest.mark.parametrize("if_match", ["garbage", '"abc"', ""])
def test_an_unreadable_if_match_fails_the_precondition(
    as_clinician: APIClient, patient: Patient, if_match: str
) -> None:
    response = as_clinician.patch(
        detail_url(patient), {"notes": "x"}, format="json", HTTP_IF_MATCH=if_match
    )

    assert response.status_code == 412
    assert error_code(response) == "precondition_failed"
    patient.refresh_from_db()
    assert patient.version == 1


def test_a_patch_with_age_stores_an_estimated_birth_date(
    as_clinician: APIClient, patient: Patient
) -> None:
    response = as_clinician.patch(detail_url(patient), {"age": 42}, format="json")

    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.date_of_birth == date(timezone.localdate().year - 42, 1, 1)
    assert patient.birth_date_estimated is True
    assert response.json()["age"] == 42


def test_a_patch_with_a_date_clears_the_estimate(as_clinician: APIClient, patient: Patient) -> None:
    as_clinician.patch(detail_url(patient), {"age": 42}, format="json")

    response = as_clinician.patch(
        detail_url(patient), {"date_of_birth": "1984-05-06"}, format="json"
    )

    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.date_of_birth, patient.birth_date_estimated) == (date(1984, 5, 6), False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"full_name": ""}, "full_name"),
        ({"email": "nope"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"gender": "Z"}, "gender"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"age": 200}, "age"),
        ({"age": 3, "date_of_birth": "2000-01-01"}, "age"),
    ],
)
def test_an_invalid_patch_is_a_validation_error_and_changes_nothing(
    as_clinician: APIClient, patient: Patient, body: dict[str, object], field: str
) -> None:
    response = as_clinician.patch(detail_url(patient), body, format="json")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert list(error_details(response)) == [field]
    patient.refresh_from_db()
    assert patient.version == 1


def test_the_mrn_and_server_fields_cannot_be_patched(
    as_clinician: APIClient, patient: Patient, other_organization: Organization, org_admin: User
) -> None:
    mrn, organization_id = patient.mrn, patient.organization_id

    response = as_clinician.patch(
        detail_url(patient),
        {
            "mrn": "CHANGED",
            "organization": other_organization.pk,
            "version": 99,
            "created_by": org_admin.pk,
            "is_active": False,
            "notes": "the only writable field here",
        },
        format="json",
    )

    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.mrn, patient.organization_id) == (mrn, organization_id)
    assert (patient.version, patient.created_by, patient.is_active) == (2, None, True)
    assert patient.notes == "the only writable field here"


def test_put_is_not_offered(as_clinician: APIClient, patient: Patient) -> None:
    response = as_clinician.put(
        detail_url(patient), {"full_name": "Whole", "age": 3}, format="json"
    )

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
    patient.refresh_from_db()
    assert patient.full_name == "John Doe"


def test_delete_archives_the_patient_and_keeps_the_record(
    as_clinician: APIClient, patient: Patient, clinician: User
) -> None:
    response = as_clinician.delete(detail_url(patient))

    assert response.status_code == 204
    patient.refresh_from_db()
    assert patient.is_active is False
    assert patient.archived_at is not None
    assert patient.version == 2
    assert patient.history.first().history_user == clinician
    assert as_clinician.get(detail_url(patient)).status_code == 404


def test_delete_with_a_stale_if_match_does_not_archive(
    as_clinician: APIClient, patient: Patient
) -> None:
    as_clinician.patch(detail_url(patient), {"notes": "v2"}, format="json")

    response = as_clinician.delete(detail_url(patient), HTTP_IF_MATCH='"1"')

    assert response.status_code == 412
    assert error_code(response) == "precondition_failed"
    patient.refresh_from_db()
    assert patient.is_active is True


def test_deleting_an_archived_patient_again_is_not_found(
    as_admin: APIClient, patient: Patient
) -> None:
    as_admin.delete(detail_url(patient))

    response = as_admin.delete(detail_url(patient))

    assert response.status_code == 404
    patient.refresh_from_db()
    assert patient.version == 2


def test_an_archived_patient_cannot_be_patched(as_admin: APIClient, patient: Patient) -> None:
    as_admin.delete(detail_url(patient))

    response = as_admin.patch(detail_url(patient), {"notes": "x"}, format="json")

    assert response.status_code == 404
    patient.refresh_from_db()
    assert patient.notes == ""


def test_an_admin_restores_an_archived_patient(as_admin: APIClient, patient: Patient) -> None:
    as_admin.delete(detail_url(patient))

    response = as_admin.post(detail_url(patient, "restore/"))

    assert response.status_code == 200
    assert response["ETag"] == '"3"'
    assert response.json()["is_active"] is True
    patient.refresh_from_db()
    assert (patient.is_active, patient.archived_at, patient.version) == (True, None, 3)


def test_restoring_an_active_patient_changes_nothing(as_admin: APIClient, patient: Patient) -> None:
    response = as_admin.post(detail_url(patient, "restore/"))

    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.is_active, patient.version) == (True, 1)
