"""sign-upload -> PUT -> confirm, with every rejection of the upload rules (local backend)."""

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from document.models import Document
from document.storage import LocalStorage
from patient.models import Patient
from tests.document.conftest import error_code, error_details
from tests.factories import DocumentFactory

SIGN_URL = "/api/document/sign-upload/"
CONFIRM_URL = "/api/document/confirm/"


def seed_body(patient: Patient, **changes: Any) -> dict[str, Any]:
    """The seed's sign-upload request."""
    return {
        "filename": "document.pdf",
        "content_type": "application/pdf",
        "size_bytes": 1024000,
        "patient_id": patient.pk,
        "document_type": "medical_report",
    } | changes


def put_file(upload_url: str, body: bytes, content_type: str, **extra: Any) -> Any:
    """PUT like a browser would: no JWT, only the signed URL and Content-Type."""
    return Client().generic(
        "PUT", urlsplit(upload_url).path, body, content_type=content_type, **extra
    )


def test_sign_upload_creates_a_pending_document_and_a_signed_put(
    as_clinician: APIClient, clinician: User, patient: Patient
) -> None:
    before = timezone.now()

    response = as_clinician.post(SIGN_URL, seed_body(patient), format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"document_id", "upload_url", "method", "headers", "expires_at"}
    assert body["method"] == "PUT"
    assert body["headers"] == {"Content-Type": "application/pdf"}
    assert body["upload_url"].startswith("http://testserver/api/document/files/")
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(minutes=15) <= expires_at <= timezone.now() + timedelta(minutes=15)
    document = Document.objects.get(pk=body["document_id"])
    assert (document.patient, document.organization_id) == (patient, patient.organization_id)
    assert (document.is_uploaded, document.uploaded_at, document.checksum) == (False, None, "")
    assert (document.title, document.filename, document.size_bytes) == (
        "document.pdf",
        "document.pdf",
        1024000,
    )
    assert document.uploaded_by == clinician


def test_object_names_are_generated_and_carry_no_patient_data(
    as_clinician: APIClient, patient: Patient
) -> None:
    response = as_clinician.post(
        SIGN_URL, seed_body(patient, filename=f"{patient.full_name} {patient.mrn}.pdf")
    )
    other = as_clinician.post(SIGN_URL, seed_body(patient))

    names = [
        Document.objects.get(pk=r.json()["document_id"]).object_name for r in (response, other)
    ]
    for name in names:
        assert re.fullmatch(rf"documents/{patient.organization_id}/[0-9a-f]{{32}}", name)
        assert patient.mrn not in name
    assert names[0] != names[1]


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\scan.pdf", "scan.pdf"),
        ("bad\x07na\x1bme\r\n.pdf", "badname.pdf"),
        ("\u202ereversed\u202c.pdf", "reversed.pdf"),
        ("  many   spaces  .pdf ", "many spaces .pdf"),
        ("..", "document"),
        ("/", "document"),
        ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
    ],
)
def test_filenames_are_sanitized_for_display(
    as_clinician: APIClient, patient: Patient, filename: str, shown: str
) -> None:
    response = as_clinician.post(SIGN_URL, seed_body(patient, filename=filename))

    assert response.status_code == 201
    assert Document.objects.get(pk=response.json()["document_id"]).filename == shown


def test_a_title_may_be_given(as_clinician: APIClient, patient: Patient) -> None:
    response = as_clinician.post(SIGN_URL, seed_body(patient, title="Blood panel"))

    assert Document.objects.get(pk=response.json()["document_id"]).title == "Blood panel"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"content_type": "application/x-msdownload"}, "content_type"),
        ({"content_type": "text/html"}, "content_type"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"size_bytes": -5}, "size_bytes"),
        ({"size_bytes": 50 * 1024 * 1024 + 1}, "size_bytes"),
        ({"document_type": "selfie"}, "document_type"),
        ({"patient_id": "abc"}, "patient_id"),
        ({"filename": ""}, "filename"),
    ],
)
def test_sign_upload_refuses_what_the_upload_rules_forbid(
    as_clinician: APIClient, patient: Patient, changes: dict[str, Any], field: str
) -> None:
    response = as_clinician.post(SIGN_URL, seed_body(patient, **changes), format="json")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert field in error_details(response)
    assert not Document.objects.exists()


def test_the_size_limit_is_a_setting(
    as_clinician: APIClient, patient: Patient, settings: Any
) -> None:
    settings.DOCUMENT_MAX_BYTES = 1000

    too_big = as_clinician.post(SIGN_URL, seed_body(patient, size_bytes=1001))
    at_limit = as_clinician.post(SIGN_URL, seed_body(patient, size_bytes=1000))

    assert error_details(too_big) == {
        "size_bytes": ["Ensure this value is less than or equal to 1000."]
    }
    assert at_limit.status_code == 201


def test_content_types_are_matched_case_insensitively_and_the_allow_list_is_a_setting(
    as_clinician: APIClient, patient: Patient, settings: Any
) -> None:
    settings.DOCUMENT_ALLOWED_CONTENT_TYPES = ["application/pdf", "text/csv"]

    csv = as_clinician.post(SIGN_URL, seed_body(patient, content_type="Text/CSV"))
    png = as_clinician.post(SIGN_URL, seed_body(patient, content_type="image/png"))

    assert csv.status_code == 201
    assert csv.json()["headers"] == {"Content-Type": "text/csv"}
    assert error_code(png) == "validation_error"


def test_sign_upload_for_a_patient_of_another_organization_is_not_found(
    as_clinician: APIClient, foreign_patient: Patient
) -> None:
    response = as_clinician.post(SIGN_URL, seed_body(foreign_patient))

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert not Document.objects.exists()


def test_sign_upload_for_an_archived_patient_is_not_found(
    as_clinician: APIClient, patient: Patient
) -> None:
    Patient.objects.filter(pk=patient.pk).update(is_active=False, archived_at=timezone.now())

    response = as_clinician.post(SIGN_URL, seed_body(patient))

    assert response.status_code == 404
    assert not Document.objects.exists()


def test_sign_upload_needs_authentication(api_client: APIClient, patient: Patient) -> None:
    response = api_client.post(SIGN_URL, seed_body(patient))

    assert response.status_code == 401
    assert not Document.objects.exists()


def test_staff_may_upload_and_confirm(
    as_staff: APIClient, patient: Patient, local_media_root: Any
) -> None:
    signed = as_staff.post(SIGN_URL, seed_body(patient, size_bytes=10)).json()

    stored = put_file(signed["upload_url"], b"%PDF-1.7 x", "application/pdf")
    confirmed = as_staff.post(CONFIRM_URL, {"document_id": signed["document_id"]})

    assert stored.status_code == 200
    assert confirmed.status_code == 200
    assert confirmed.json()["is_uploaded"] is True


def test_confirm_reads_size_type_and_checksum_from_storage(
    as_clinician: APIClient, patient: Patient, local_storage: LocalStorage
) -> None:
    signed = as_clinician.post(SIGN_URL, seed_body(patient, size_bytes=100)).json()
    body = b"%PDF-1.7 smaller than declared"
    assert put_file(signed["upload_url"], body, "application/pdf").status_code == 200

    response = as_clinician.post(CONFIRM_URL, {"document_id": signed["document_id"]})

    assert response.status_code == 200
    data = response.json()
    document = Document.objects.get(pk=signed["document_id"])
    stored = local_storage.stat(document.object_name)
    assert stored is not None
    assert data["is_uploaded"] is True
    assert data["size_bytes"] == len(body) == document.size_bytes
    assert data["checksum"] == stored.checksum == document.checksum
    assert document.is_uploaded
    assert document.uploaded_at is not None


def test_confirm_without_a_stored_file_is_a_conflict(
    as_clinician: APIClient, patient: Patient
) -> None:
    signed = as_clinician.post(SIGN_URL, seed_body(patient)).json()

    response = as_clinician.post(CONFIRM_URL, {"document_id": signed["document_id"]})

    assert response.status_code == 409
    assert error_code(response) == "upload_missing"
    assert "upload the file first" in response.json()["error"]["message"]
    assert not Document.objects.get(pk=signed["document_id"]).is_uploaded


def test_confirm_rejects_and_removes_a_file_larger_than_declared(
    as_clinician: APIClient, patient: Patient, local_storage: LocalStorage
) -> None:
    document = DocumentFactory.create(patient=patient, size_bytes=10)
    local_storage.write(
        document.object_name, [b"x" * 11], content_type="application/pdf", max_bytes=100
    )

    response = as_clinician.post(CONFIRM_URL, {"document_id": document.pk})

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert list(error_details(response)) == ["size_bytes"]
    assert local_storage.stat(document.object_name) is None
    document.refresh_from_db()
    assert (document.is_uploaded, document.checksum, document.size_bytes) == (False, "", 10)


def test_confirm_rejects_and_removes_a_file_of_another_type(
    as_clinician: APIClient, patient: Patient, local_storage: LocalStorage
) -> None:
    document = DocumentFactory.create(patient=patient, size_bytes=10)
    local_storage.write(document.object_name, [b"png"], content_type="image/png", max_bytes=10)

    response = as_clinician.post(CONFIRM_URL, {"document_id": document.pk})

    assert response.status_code == 400
    assert list(error_details(response)) == ["content_type"]
    assert local_storage.stat(document.object_name) is None
    document.refresh_from_db()
    assert not document.is_uploaded


def test_a_second_confirm_changes_nothing(
    as_clinician: APIClient, patient: Patient, local_storage: LocalStorage
) -> None:
    signed = as_clinician.post(SIGN_URL, seed_body(patient, size_bytes=10)).json()
    put_file(signed["upload_url"], b"%PDF-1.7 x", "application/pdf")
    first = as_clinician.post(CONFIRM_URL, {"document_id": signed["document_id"]}).json()

    second = as_clinician.post(CONFIRM_URL, {"document_id": signed["document_id"]})

    assert second.status_code == 200
    assert second.json() == first


def test_confirm_of_another_organizations_document_is_not_found(
    as_foreign: APIClient, patient: Patient, local_storage: LocalStorage
) -> None:
    document = DocumentFactory.create(patient=patient, size_bytes=3)
    local_storage.write(document.object_name, [b"pdf"], content_type="application/pdf", max_bytes=3)

    response = as_foreign.post(CONFIRM_URL, {"document_id": document.pk})

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    document.refresh_from_db()
    assert not document.is_uploaded


def test_confirm_needs_a_document_id(as_clinician: APIClient) -> None:
    response = as_clinician.post(CONFIRM_URL, {})

    assert response.status_code == 400
    assert list(error_details(response)) == ["document_id"]


def test_upload_url_re_signs_a_pending_document(as_clinician: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient, content_type="image/png", size_bytes=3)

    response = as_clinician.post(f"/api/document/documents/{document.pk}/upload_url/")

    assert response.status_code == 200
    body = response.json()
    assert body["document_id"] == document.pk
    assert body["headers"] == {"Content-Type": "image/png"}
    assert put_file(body["upload_url"], b"png", "image/png").status_code == 200


def test_upload_url_of_an_uploaded_document_is_a_conflict(
    as_clinician: APIClient, stored_document: Document
) -> None:
    response = as_clinician.post(f"/api/document/documents/{stored_document.pk}/upload_url/")

    assert response.status_code == 409
    assert error_code(response) == "already_uploaded"


def test_create_records_a_pending_document_without_a_url(
    as_staff: APIClient, staff_user: User, patient: Patient
) -> None:
    response = as_staff.post("/api/document/documents/", seed_body(patient, title="Referral"))

    assert response.status_code == 201
    body = response.json()
    assert body["is_uploaded"] is False
    assert body["patient"] == patient.pk
    assert body["title"] == "Referral"
    assert "object_name" not in body
    document = Document.objects.get(pk=body["id"])
    assert document.uploaded_by == staff_user


def test_create_for_a_foreign_patient_is_not_found(
    as_clinician: APIClient, foreign_patient: Patient
) -> None:
    response = as_clinician.post("/api/document/documents/", seed_body(foreign_patient))

    assert response.status_code == 404
    assert not Document.objects.exists()


def test_clients_cannot_write_server_owned_fields(
    as_clinician: APIClient, patient: Patient
) -> None:
    response = as_clinician.post(
        SIGN_URL,
        seed_body(
            patient,
            object_name="documents/1/chosen",
            is_uploaded=True,
            checksum="md5:forged",
            organization=999,
        ),
        format="json",
    )

    document = Document.objects.get(pk=response.json()["document_id"])
    assert document.object_name != "documents/1/chosen"
    assert (document.is_uploaded, document.checksum) == (False, "")
    assert document.organization_id == patient.organization_id
