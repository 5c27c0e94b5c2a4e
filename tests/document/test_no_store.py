"""Signed URLs and file bytes are patient data: no cache may keep them (the successful answers;
tests/audit/test_coverage.py walks every route's other answers)."""

from urllib.parse import urlsplit

from django.test import Client
from rest_framework.test import APIClient

from document.models import Document
from patient.models import Patient
from tests.factories import DocumentFactory


def test_every_step_of_an_upload_and_a_download_is_no_store(
    as_clinician: APIClient, patient: Patient, pdf_bytes
) -> None:
    body = pdf_bytes(2048)
    signed = as_clinician.post(
        "/api/document/sign-upload/",
        {
            "filename": "scan.pdf",
            "content_type": "application/pdf",
            "size_bytes": len(body),
            "patient_id": patient.pk,
            "document_type": "lab_result",
        },
        format="json",
    )
    document_id = signed.json()["document_id"]
    fresh = as_clinician.post(f"/api/document/documents/{document_id}/upload_url/")
    stored = Client().generic(
        "PUT", urlsplit(fresh.json()["upload_url"]).path, body, content_type="application/pdf"
    )
    confirmed = as_clinician.post(
        "/api/document/confirm/", {"document_id": document_id}, format="json"
    )
    download = as_clinician.get(f"/api/document/documents/{document_id}/download_url/")
    file = Client().get(urlsplit(download.json()["download_url"]).path)

    answers = [signed, fresh, stored, confirmed, download, file]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 200, 200]
    assert file.getvalue() == body
    assert [answer["Cache-Control"] for answer in answers] == ["no-store"] * len(answers)
    assert Document.objects.get(pk=document_id).is_uploaded


def test_a_document_list_and_detail_are_no_store(as_clinician: APIClient, patient: Patient) -> None:
    document = DocumentFactory.create(patient=patient)

    for url in ("/api/document/documents/", f"/api/document/documents/{document.pk}/"):
        response = as_clinician.get(url)
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
