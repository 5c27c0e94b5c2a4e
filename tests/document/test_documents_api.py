"""/api/document/documents/: list and filters, detail, metadata updates, archive, download URLs,
by_patient and stats, each with its three actors and its query count."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization
from document.models import Document, DocumentType
from document.storage import LocalStorage
from patient.models import Patient
from tests.document.conftest import error_code, error_details, ids
from tests.factories import DocumentFactory, PatientFactory

LIST_URL = "/api/document/documents/"


def detail_url(document: Document, suffix: str = "") -> str:
    return f"{LIST_URL}{document.pk}/{suffix}"


# --- list ---------------------------------------------------------------------------------------


def test_the_list_shows_the_organizations_active_documents_newest_first(
    as_clinician: APIClient, patient: Patient, foreign_patient: Patient
) -> None:
    older = DocumentFactory.create(patient=patient)
    newer = DocumentFactory.create(patient=patient, uploaded=True)
    DocumentFactory.create(patient=patient, is_active=False, archived_at=timezone.now())
    DocumentFactory.create(patient=foreign_patient)
    archived_patient = PatientFactory.create(organization=patient.organization, is_active=False)
    DocumentFactory.create(patient=archived_patient)

    response = as_clinician.get(LIST_URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert ids(response) == [newer.pk, older.pk]
    assert set(body["results"][0]) == {
        "id",
        "patient",
        "document_type",
        "title",
        "filename",
        "content_type",
        "size_bytes",
        "is_uploaded",
        "uploaded_at",
        "checksum",
        "scan_status",
        "scanned_at",
        "scan_finding",
        "uploaded_by",
        "created_at",
        "updated_at",
    }


def test_staff_read_documents_and_other_organizations_see_none(
    as_staff: APIClient, as_foreign: APIClient, patient: Patient
) -> None:
    document = DocumentFactory.create(patient=patient)

    assert ids(as_staff.get(LIST_URL)) == [document.pk]
    assert as_staff.get(detail_url(document)).status_code == 200
    assert as_foreign.get(LIST_URL).json()["count"] == 0
    assert as_foreign.get(f"{LIST_URL}?patient={patient.pk}").json()["count"] == 0


def test_the_list_needs_authentication(api_client: APIClient) -> None:
    response = api_client.get(LIST_URL)

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


@pytest.mark.parametrize("count", [3, 25])
def test_the_list_costs_the_same_queries_whatever_its_size(
    as_clinician: APIClient,
    patient: Patient,
    django_assert_num_queries: Any,
    count: int,
) -> None:
    other_patient = PatientFactory.create(organization=patient.organization)
    for index in range(count):
        DocumentFactory.create(patient=patient if index % 2 else other_patient)

    # The caller comes from the cache. 1 COUNT of the page's query, 2 the page, 3 the audit INSERT
    with django_assert_num_queries(3):
        response = as_clinician.get(f"{LIST_URL}?page_size=100")

    assert response.json()["count"] == count


def test_the_seed_query_filters_by_patient_type_and_upload_state(
    as_clinician: APIClient, patient: Patient
) -> None:
    wanted = DocumentFactory.create(patient=patient, uploaded=True)
    DocumentFactory.create(patient=patient)  # pending
    DocumentFactory.create(patient=patient, uploaded=True, document_type="lab_result")
    other_patient = PatientFactory.create(organization=patient.organization)
    DocumentFactory.create(patient=other_patient, uploaded=True)

    response = as_clinician.get(
        f"{LIST_URL}?patient={patient.pk}&document_type=medical_report&is_uploaded=true"
    )

    assert ids(response) == [wanted.pk]


def test_the_patient_filter(as_clinician: APIClient, patient: Patient) -> None:
    mine = DocumentFactory.create(patient=patient)
    DocumentFactory.create(patient=PatientFactory.create(organization=patient.organization))

    assert ids(as_clinician.get(f"{LIST_URL}?patient={patient.pk}")) == [mine.pk]


def test_the_document_type_filter(as_clinician: APIClient, patient: Patient) -> None:
    lab = DocumentFactory.create(patient=patient, document_type=DocumentType.LAB_RESULT)
    DocumentFactory.create(patient=patient, document_type=DocumentType.IMAGING)

    assert ids(as_clinician.get(f"{LIST_URL}?document_type=lab_result")) == [lab.pk]


def test_an_unknown_document_type_is_a_validation_error(as_clinician: APIClient) -> None:
    response = as_clinician.get(f"{LIST_URL}?document_type=selfie")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert "document_type" in error_details(response)


def test_the_is_uploaded_filter(as_clinician: APIClient, patient: Patient) -> None:
    uploaded = DocumentFactory.create(patient=patient, uploaded=True)
    pending = DocumentFactory.create(patient=patient)

    assert ids(as_clinician.get(f"{LIST_URL}?is_uploaded=true")) == [uploaded.pk]
    assert ids(as_clinician.get(f"{LIST_URL}?is_uploaded=false")) == [pending.pk]


def test_search_matches_title_or_filename_ignoring_case(
    as_clinician: APIClient, patient: Patient
) -> None:
    by_title = DocumentFactory.create(patient=patient, title="Cardiology Letter", filename="a.pdf")
    by_filename = DocumentFactory.create(patient=patient, title="Scan", filename="ECG-cardio.pdf")
    DocumentFactory.create(patient=patient, title="Dental", filename="teeth.png")

    response = as_clinician.get(f"{LIST_URL}?search=CARDIO")

    assert sorted(ids(response)) == sorted([by_title.pk, by_filename.pk])


def test_ordering_by_title_size_and_creation(as_clinician: APIClient, patient: Patient) -> None:
    b = DocumentFactory.create(patient=patient, title="B", size_bytes=300)
    a = DocumentFactory.create(patient=patient, title="A", size_bytes=100)
    c = DocumentFactory.create(patient=patient, title="C", size_bytes=200)

    assert ids(as_clinician.get(f"{LIST_URL}?ordering=title")) == [a.pk, b.pk, c.pk]
    assert ids(as_clinician.get(f"{LIST_URL}?ordering=-size_bytes")) == [b.pk, c.pk, a.pk]
    assert ids(as_clinician.get(f"{LIST_URL}?ordering=created_at")) == [b.pk, a.pk, c.pk]
    assert as_clinician.get(f"{LIST_URL}?ordering=object_name").status_code == 400


# --- detail -------------------------------------------------------------------------------------


def test_a_document_is_read_in_two_queries_plus_the_audit(
    as_clinician: APIClient, patient: Patient, django_assert_num_queries: Any
) -> None:
    document = DocumentFactory.create(patient=patient, uploaded=True)

    # 1 the document scoped to the organization, 2 the audit INSERT
    with django_assert_num_queries(2):
        response = as_clinician.get(detail_url(document))

    assert response.status_code == 200
    assert response.json()["id"] == document.pk
    assert response.json()["checksum"] == document.checksum


def test_foreign_archived_and_missing_documents_are_not_found(
    as_clinician: APIClient, as_foreign: APIClient, patient: Patient
) -> None:
    document = DocumentFactory.create(patient=patient)
    archived = DocumentFactory.create(patient=patient, is_active=False)

    for client, url in (
        (as_foreign, detail_url(document)),
        (as_clinician, detail_url(archived)),
        (as_clinician, f"{LIST_URL}999999/"),
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert error_code(response) == "not_found"


def test_metadata_can_be_patched_by_staff(as_staff: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient, uploaded=True)

    response = as_staff.patch(
        detail_url(document),
        {
            "title": "Discharge letter",
            "document_type": "referral",
            "filename": "../letter.pdf",
            "is_uploaded": False,
            "content_type": "image/png",
            "size_bytes": 1,
            "checksum": "md5:forged",
        },
    )

    assert response.status_code == 200
    document.refresh_from_db()
    assert (document.title, document.document_type, document.filename) == (
        "Discharge letter",
        "referral",
        "letter.pdf",
    )
    assert (document.is_uploaded, document.content_type, document.size_bytes) == (
        True,
        "application/pdf",
        1024,
    )
    assert document.checksum != "md5:forged"
    assert response.json()["title"] == "Discharge letter"


def test_a_patch_with_a_bad_type_changes_nothing(as_clinician: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient, title="Kept")

    response = as_clinician.patch(detail_url(document), {"document_type": "x", "title": "New"})

    assert response.status_code == 400
    assert list(error_details(response)) == ["document_type"]
    document.refresh_from_db()
    assert document.title == "Kept"


def test_another_organization_cannot_patch(as_foreign: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient, title="Kept")

    response = as_foreign.patch(detail_url(document), {"title": "Mine"})

    assert response.status_code == 404
    document.refresh_from_db()
    assert document.title == "Kept"


def test_put_is_not_offered(as_clinician: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient)

    response = as_clinician.put(detail_url(document), {"title": "x"})

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


# --- archive ------------------------------------------------------------------------------------


def test_delete_archives_and_keeps_the_stored_file(
    as_clinician: APIClient, stored_document: Document, local_storage: LocalStorage
) -> None:
    response = as_clinician.delete(detail_url(stored_document))

    assert response.status_code == 204
    stored_document.refresh_from_db()
    assert stored_document.is_active is False
    assert stored_document.archived_at is not None
    assert local_storage.stat(stored_document.object_name) is not None
    assert as_clinician.get(detail_url(stored_document)).status_code == 404
    assert as_clinician.delete(detail_url(stored_document)).status_code == 404


def test_admins_may_archive(as_admin: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient)

    assert as_admin.delete(detail_url(document)).status_code == 204
    document.refresh_from_db()
    assert not document.is_active


def test_staff_cannot_archive_and_other_organizations_cannot_see(
    as_staff: APIClient, as_foreign: APIClient, patient: Patient
) -> None:
    document = DocumentFactory.create(patient=patient)

    by_staff = as_staff.delete(detail_url(document))
    by_foreign = as_foreign.delete(detail_url(document))

    assert by_staff.status_code == 403
    assert error_code(by_staff) == "permission_denied"
    assert by_foreign.status_code == 404
    document.refresh_from_db()
    assert document.is_active


# --- download URLs ------------------------------------------------------------------------------


def test_a_clinician_gets_a_download_url_that_serves_the_file(
    as_clinician: APIClient, stored_document: Document
) -> None:
    before = timezone.now()

    response = as_clinician.get(detail_url(stored_document, "download_url/"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"download_url", "expires_at", "filename", "content_type"}
    assert (body["filename"], body["content_type"]) == ("stored.pdf", "application/pdf")
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(minutes=5) <= expires_at <= timezone.now() + timedelta(minutes=5)
    assert body["download_url"].startswith("http://testserver/api/document/files/")
    file_response = Client().get(body["download_url"])
    assert file_response.getvalue() == b"%PDF-1.7 stored document"
    assert file_response["Content-Disposition"] == 'attachment; filename="stored.pdf"'


def test_download_url_queries(
    as_clinician: APIClient, stored_document: Document, django_assert_num_queries: Any
) -> None:
    # 1 the document, 2 the audit INSERT
    with django_assert_num_queries(2):
        assert as_clinician.get(detail_url(stored_document, "download_url/")).status_code == 200


def test_staff_cannot_download(as_staff: APIClient, stored_document: Document) -> None:
    response = as_staff.get(detail_url(stored_document, "download_url/"))

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"


def test_another_organization_cannot_download(
    as_foreign: APIClient, stored_document: Document
) -> None:
    response = as_foreign.get(detail_url(stored_document, "download_url/"))

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_a_pending_document_has_no_download_url(as_clinician: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient)

    response = as_clinician.get(detail_url(document, "download_url/"))

    assert response.status_code == 409
    assert error_code(response) == "not_uploaded"


# --- by_patient ---------------------------------------------------------------------------------


def test_by_patient_lists_one_patients_documents_in_constant_queries(
    as_staff: APIClient, patient: Patient, django_assert_num_queries: Any
) -> None:
    mine = [DocumentFactory.create(patient=patient) for _ in range(4)]
    DocumentFactory.create(patient=PatientFactory.create(organization=patient.organization))

    # 1 the patient (scoped), 2 COUNT, 3 the page, 4 the audit INSERT
    with django_assert_num_queries(4):
        response = as_staff.get(f"{LIST_URL}by_patient/?patient_id={patient.pk}&page_size=2")

    assert response.status_code == 200
    assert response.json()["count"] == 4
    assert ids(response) == [mine[3].pk, mine[2].pk]
    assert response.json()["next"] is not None


def test_by_patient_needs_a_patient_id(as_clinician: APIClient) -> None:
    for url in (f"{LIST_URL}by_patient/", f"{LIST_URL}by_patient/?patient_id=abc"):
        response = as_clinician.get(url)
        assert response.status_code == 400
        assert error_code(response) == "validation_error"
        assert list(error_details(response)) == ["patient_id"]


def test_by_patient_of_a_foreign_patient_is_not_found(
    as_foreign: APIClient, patient: Patient
) -> None:
    DocumentFactory.create(patient=patient)

    response = as_foreign.get(f"{LIST_URL}by_patient/?patient_id={patient.pk}")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


# --- stats --------------------------------------------------------------------------------------


@pytest.fixture
def known_documents(patient: Patient, foreign_patient: Patient) -> dict[str, Any]:
    """Documents with known counts and bytes, and some that stats must ignore."""
    second = PatientFactory.create(organization=patient.organization)
    long_ago = timezone.now() - timedelta(days=40)
    DocumentFactory.create(patient=patient, uploaded=True, size_bytes=100)
    DocumentFactory.create(patient=patient, uploaded=True, size_bytes=200)
    DocumentFactory.create(patient=patient, document_type="lab_result", size_bytes=999)
    old = DocumentFactory.create(
        patient=patient, document_type="imaging", uploaded=True, size_bytes=50
    )
    Document.objects.filter(pk=old.pk).update(created_at=long_ago, uploaded_at=long_ago)
    DocumentFactory.create(
        patient=second, document_type="prescription", uploaded=True, size_bytes=300
    )
    # Ignored: archived, another organization's, an archived patient's.
    DocumentFactory.create(patient=patient, uploaded=True, size_bytes=7000, is_active=False)
    DocumentFactory.create(patient=foreign_patient, uploaded=True, size_bytes=8000)
    archived_patient = PatientFactory.create(organization=patient.organization, is_active=False)
    DocumentFactory.create(patient=archived_patient, uploaded=True, size_bytes=9000)
    return {"second": second}


def by_type(**counts: int) -> dict[str, int]:
    return {choice.value: counts.get(choice.value, 0) for choice in DocumentType}


def test_stats_count_the_organizations_documents_in_one_query(
    as_clinician: APIClient,
    known_documents: dict[str, Any],
    django_assert_num_queries: Any,
    bounded_queries: int,
) -> None:
    # 1 one aggregate over the documents, 2 the audit INSERT; on PostgreSQL the statement
    # timeout's statements around 1 (bounded_queries)
    with django_assert_num_queries(2 + bounded_queries):
        response = as_clinician.get(f"{LIST_URL}stats/")

    assert response.status_code == 200
    assert response.json() == {
        "total": 5,
        "uploaded": 4,
        "pending": 1,
        "total_bytes": 650,
        "by_type": by_type(medical_report=2, lab_result=1, imaging=1, prescription=1),
        "last_30_days": {"created": 4, "uploaded": 3, "uploaded_bytes": 600},
    }


def test_stats_of_one_patient(
    as_staff: APIClient,
    patient: Patient,
    known_documents: dict[str, Any],
    django_assert_num_queries: Any,
    bounded_queries: int,
) -> None:
    # 1 the patient (scoped), 2 the aggregate, 3 the audit INSERT; on PostgreSQL the statement
    # timeout's statements around 1 and 2 (bounded_queries)
    with django_assert_num_queries(3 + bounded_queries):
        response = as_staff.get(f"{LIST_URL}stats/?patient={patient.pk}")

    assert response.json() == {
        "total": 4,
        "uploaded": 3,
        "pending": 1,
        "total_bytes": 350,
        "by_type": by_type(medical_report=2, lab_result=1, imaging=1),
        "last_30_days": {"created": 3, "uploaded": 2, "uploaded_bytes": 300},
    }


def test_stats_of_another_organization_are_its_own(
    as_foreign: APIClient, patient: Patient, known_documents: dict[str, Any]
) -> None:
    own = as_foreign.get(f"{LIST_URL}stats/")
    theirs = as_foreign.get(f"{LIST_URL}stats/?patient={patient.pk}")

    assert own.json()["total"] == 1
    assert own.json()["total_bytes"] == 8000
    assert theirs.status_code == 404
    assert error_code(theirs) == "not_found"


def test_stats_of_an_empty_organization_are_zeros(
    as_clinician: APIClient, organization: Organization
) -> None:
    response = as_clinician.get(f"{LIST_URL}stats/")

    assert response.json() == {
        "total": 0,
        "uploaded": 0,
        "pending": 0,
        "total_bytes": 0,
        "by_type": by_type(),
        "last_30_days": {"created": 0, "uploaded": 0, "uploaded_bytes": 0},
    }
