"""The local backend's file endpoints: authorised only by the signed token in the URL."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.http import FileResponse
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from document.models import Document
from document.storage import LocalStorage, get_storage
from patient.models import Patient
from tests.document.conftest import error_code
from tests.factories import DocumentFactory


def upload_path(document: Document) -> str:
    signed = get_storage().sign_upload(
        object_name=document.object_name,
        content_type=document.content_type,
        size_bytes=document.size_bytes,
    )
    return urlsplit(signed.url).path


def download_path(document: Document) -> str:
    signed = get_storage().sign_download(
        object_name=document.object_name,
        filename=document.filename,
        content_type=document.content_type,
    )
    return signed.url


def put(path: str, body: bytes, content_type: str = "application/pdf", **extra: Any) -> Any:
    return Client().generic("PUT", path, body, content_type=content_type, **extra)


@pytest.fixture
def pending(patient: Patient) -> Document:
    return DocumentFactory.create(patient=patient, size_bytes=4096)


def test_a_put_stores_the_body_atomically_under_the_media_root(
    pending: Document, local_storage: LocalStorage, local_media_root: Any
) -> None:
    body = b"%PDF" + b"1" * 4092

    response = put(upload_path(pending), body)

    assert response.status_code == 200
    stored = local_storage.stat(pending.object_name)
    assert stored is not None
    assert response["ETag"] == f'"{stored.checksum}"'
    assert (local_media_root / pending.object_name).read_bytes() == body
    leftovers = [p.name for p in (local_media_root / pending.object_name).parent.iterdir()]
    assert sorted(leftovers) == sorted(
        [
            pending.object_name.rsplit("/", 1)[1],
            pending.object_name.rsplit("/", 1)[1] + ".meta.json",
        ]
    )


def test_a_body_larger_than_two_mebibytes_is_streamed_not_refused(
    patient: Patient, local_storage: LocalStorage
) -> None:
    size = 3 * 1024 * 1024 + 7
    document = DocumentFactory.create(patient=patient, size_bytes=size)

    response = put(upload_path(document), b"z" * size)

    assert response.status_code == 200
    stored = local_storage.stat(document.object_name)
    assert stored is not None
    assert stored.size_bytes == size


def test_a_put_with_another_content_type_is_unsupported(
    pending: Document, local_storage: LocalStorage
) -> None:
    response = put(upload_path(pending), b"%PDF", content_type="image/png")

    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert local_storage.stat(pending.object_name) is None


def test_a_put_larger_than_signed_for_is_too_large(
    patient: Patient, local_storage: LocalStorage
) -> None:
    document = DocumentFactory.create(patient=patient, size_bytes=10)

    response = put(upload_path(document), b"x" * 11)

    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert local_storage.stat(document.object_name) is None


def test_a_put_must_declare_its_length(pending: Document, local_storage: LocalStorage) -> None:
    response = put(upload_path(pending), b"%PDF", CONTENT_LENGTH="")

    assert response.status_code == 411
    assert error_code(response) == "length_required"
    assert local_storage.stat(pending.object_name) is None


def test_an_empty_put_is_refused(pending: Document, local_storage: LocalStorage) -> None:
    # The test client drops the headers of an empty body; a real client sends them.
    response = put(upload_path(pending), b"", CONTENT_TYPE="application/pdf", CONTENT_LENGTH="0")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert local_storage.stat(pending.object_name) is None


def test_an_expired_upload_url_is_forbidden(pending: Document, local_storage: LocalStorage) -> None:
    path = upload_path(pending)

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = put(path, b"%PDF")

    assert response.status_code == 403
    assert error_code(response) == "signature_expired"
    assert local_storage.stat(pending.object_name) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda path: path.replace("/files/", "/files/x"),
        lambda path: path[:-3] + ("A/" if path[-2] != "A" else "B/"),
        lambda path: "/api/document/files/not-a-token/",
    ],
)
def test_a_tampered_upload_url_is_forbidden(
    pending: Document, local_storage: LocalStorage, tamper: Any
) -> None:
    response = put(tamper(upload_path(pending)), b"%PDF")

    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"
    assert local_storage.stat(pending.object_name) is None


def test_a_download_url_cannot_upload(pending: Document, local_storage: LocalStorage) -> None:
    response = put(download_path(pending), b"%PDF")

    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"
    assert local_storage.stat(pending.object_name) is None


def test_a_confirmed_document_takes_no_new_bytes(
    stored_document: Document, local_storage: LocalStorage
) -> None:
    before = local_storage.stat(stored_document.object_name)

    response = put(upload_path(stored_document), b"%PDF replaced")

    assert response.status_code == 409
    assert error_code(response) == "upload_closed"
    assert local_storage.stat(stored_document.object_name) == before


def test_a_download_returns_the_bytes_as_an_attachment(stored_document: Document) -> None:
    response = Client().get(download_path(stored_document), HTTP_ACCEPT="application/pdf")

    assert response.status_code == 200
    assert response.getvalue() == b"%PDF-1.7 stored document"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="stored.pdf"'
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_download_filename_is_quoted_safely(
    patient: Patient, local_storage: LocalStorage
) -> None:
    document = DocumentFactory.create(
        patient=patient, uploaded=True, filename='résumé "final".pdf', size_bytes=3
    )
    local_storage.write(document.object_name, [b"pdf"], content_type="application/pdf", max_bytes=3)

    response = Client().get(download_path(document))

    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
    )


def test_an_expired_download_url_is_forbidden(stored_document: Document) -> None:
    path = download_path(stored_document)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = Client().get(path)

    assert response.status_code == 403
    assert error_code(response) == "signature_expired"


def test_an_upload_url_cannot_download(stored_document: Document) -> None:
    response = Client().get(upload_path(stored_document))

    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"


def test_a_download_of_a_missing_file_is_not_found(patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient, uploaded=True)

    response = Client().get(download_path(document))

    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_file_urls_ignore_bearer_tokens_and_sessions(
    as_clinician: APIClient, stored_document: Document
) -> None:
    response = as_clinician.get("/api/document/files/not-a-token/")

    assert response.status_code == 403
    assert error_code(response) == "invalid_signature"


def test_file_urls_do_not_exist_with_the_gcs_backend(
    stored_document: Document, gcs_backend: Any
) -> None:
    response = Client().get("/api/document/files/anything/")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


ARCHIVE_URLS = {
    "document": lambda document: f"/api/document/documents/{document.pk}/",
    "patient": lambda document: f"/api/patient/patients/{document.patient_id}/",
}


@pytest.mark.parametrize("archived", ARCHIVE_URLS)
def test_a_download_url_dies_when_its_document_or_patient_is_archived(
    stored_document: Document, as_clinician: APIClient, archived: str
) -> None:
    path = download_path(stored_document)
    assert Client().get(path).status_code == 200

    assert as_clinician.delete(ARCHIVE_URLS[archived](stored_document)).status_code == 204
    response = Client().get(path)

    assert response.status_code == 410
    assert error_code(response) == "document_archived"
    assert not isinstance(response, FileResponse)


@pytest.mark.parametrize("archived", ARCHIVE_URLS)
def test_an_upload_url_dies_when_its_document_or_patient_is_archived(
    pending: Document, as_clinician: APIClient, local_storage: LocalStorage, archived: str
) -> None:
    path = upload_path(pending)

    assert as_clinician.delete(ARCHIVE_URLS[archived](pending)).status_code == 204
    response = put(path, b"%PDF" + b"1" * 4092)

    assert response.status_code == 410
    assert error_code(response) == "document_archived"
    assert local_storage.stat(pending.object_name) is None
