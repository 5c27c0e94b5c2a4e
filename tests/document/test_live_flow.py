"""The seed's three-step flow over real HTTP, with both storage backends.

A live server runs the app; `requests` plays the client: sign in, sign an upload, PUT the
file to the returned URL with only `Content-Type`, confirm, find it with the seed's filter,
then download it through a download URL.
"""

import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from accounts.models import User
from document.models import Document
from document.storage import get_storage
from patient.models import Patient
from tests.factories import TEST_PASSWORD, DocumentFactory
from tests.gcs import EMULATOR_BUCKET, Emulator

pytestmark = pytest.mark.django_db(transaction=True)

SEED_SIZE = 1024000


def sign_in(base_url: str, user: User) -> dict[str, str]:
    response = requests.post(
        f"{base_url}/api/auth/token/",
        json={"username": user.username, "password": TEST_PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access']}"}


def run_seed_flow(base_url: str, user: User, patient: Patient, body: bytes) -> dict[str, Any]:
    auth = sign_in(base_url, user)

    signed = requests.post(
        f"{base_url}/api/document/sign-upload/",
        json={
            "filename": "document.pdf",
            "content_type": "application/pdf",
            "size_bytes": SEED_SIZE,
            "patient_id": patient.pk,
            "document_type": "medical_report",
        },
        headers=auth,
        timeout=10,
    )
    assert signed.status_code == 201
    upload = signed.json()
    assert upload["method"] == "PUT"

    stored = requests.put(
        upload["upload_url"],
        data=body,
        headers={"Content-Type": "application/pdf"},
        timeout=30,
    )
    assert stored.status_code == 200

    confirmed = requests.post(
        f"{base_url}/api/document/confirm/",
        json={"document_id": upload["document_id"]},
        headers=auth,
        timeout=10,
    )
    assert confirmed.status_code == 200
    assert confirmed.json()["is_uploaded"] is True
    assert confirmed.json()["size_bytes"] == len(body)

    listed = requests.get(
        f"{base_url}/api/document/documents/",
        params={
            "patient": str(patient.pk),
            "document_type": "medical_report",
            "is_uploaded": "true",
        },
        headers=auth,
        timeout=10,
    )
    assert [row["id"] for row in listed.json()["results"]] == [upload["document_id"]]

    link = requests.get(
        f"{base_url}/api/document/documents/{upload['document_id']}/download_url/",
        headers=auth,
        timeout=10,
    )
    assert link.status_code == 200
    downloaded = requests.get(link.json()["download_url"], timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == body
    assert downloaded.headers["Content-Disposition"] == 'attachment; filename="document.pdf"'
    assert downloaded.headers["Content-Type"] == "application/pdf"
    return {"upload": upload, "link": link.json()}


def test_the_seed_flow_with_the_local_backend(
    live_server: Any, clinician: User, patient: Patient, pdf_bytes: Any
) -> None:
    body = pdf_bytes(SEED_SIZE)

    result = run_seed_flow(live_server.url, clinician, patient, body)

    assert result["upload"]["upload_url"].startswith(f"{live_server.url}/api/document/files/")
    document = Document.objects.get(pk=result["upload"]["document_id"])
    assert document.is_uploaded
    assert document.checksum.startswith("md5:")


def test_the_seed_flow_with_the_gcs_backend_and_the_emulator(
    live_server: Any, clinician: User, patient: Patient, pdf_bytes: Any, gcs_backend: Emulator
) -> None:
    body = pdf_bytes(SEED_SIZE)

    result = run_seed_flow(live_server.url, clinician, patient, body)

    assert result["upload"]["upload_url"].startswith(f"{gcs_backend.url}/{EMULATOR_BUCKET}/")
    assert result["link"]["download_url"].startswith(f"{gcs_backend.url}/{EMULATOR_BUCKET}/")
    document = Document.objects.get(pk=result["upload"]["document_id"])
    assert document.is_uploaded
    assert document.checksum.startswith("md5:")


def _gcs_pending(
    live_server: Any, clinician: User, patient: Patient
) -> tuple[dict[str, str], dict[str, Any]]:
    auth = sign_in(live_server.url, clinician)
    signed = requests.post(
        f"{live_server.url}/api/document/sign-upload/",
        json={
            "filename": "scan.pdf",
            "content_type": "application/pdf",
            "size_bytes": 100,
            "patient_id": patient.pk,
            "document_type": "imaging",
        },
        headers=auth,
        timeout=10,
    )
    assert signed.status_code == 201
    return auth, signed.json()


def _confirm(live_server: Any, auth: dict[str, str], document_id: int) -> requests.Response:
    return requests.post(
        f"{live_server.url}/api/document/confirm/",
        json={"document_id": document_id},
        headers=auth,
        timeout=10,
    )


def test_gcs_confirm_without_an_upload_is_a_conflict(
    live_server: Any, clinician: User, patient: Patient, gcs_backend: Emulator
) -> None:
    auth, upload = _gcs_pending(live_server, clinician, patient)

    response = _confirm(live_server, auth, upload["document_id"])

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "upload_missing"


def test_gcs_confirm_rejects_and_deletes_an_object_larger_than_declared(
    live_server: Any, clinician: User, patient: Patient, gcs_backend: Emulator
) -> None:
    auth, upload = _gcs_pending(live_server, clinician, patient)
    requests.put(upload["upload_url"], data=b"x" * 101, headers=upload["headers"], timeout=10)

    response = _confirm(live_server, auth, upload["document_id"])

    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["size_bytes"]
    document = Document.objects.get(pk=upload["document_id"])
    assert not document.is_uploaded
    path = urlsplit(upload["upload_url"]).path
    assert requests.get(f"{gcs_backend.url}{path}", timeout=10).status_code == 404


def test_gcs_confirm_rejects_and_deletes_an_object_of_another_type(
    live_server: Any, clinician: User, patient: Patient, gcs_backend: Emulator
) -> None:
    # Real GCS refuses this PUT (the signature binds Content-Type); the emulator does not, so
    # confirm is the last line of defence and must catch it.
    auth, upload = _gcs_pending(live_server, clinician, patient)
    requests.put(
        upload["upload_url"], data=b"<html>", headers={"Content-Type": "text/html"}, timeout=10
    )

    response = _confirm(live_server, auth, upload["document_id"])

    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["content_type"]
    path = urlsplit(upload["upload_url"]).path
    assert requests.get(f"{gcs_backend.url}{path}", timeout=10).status_code == 404


def test_a_local_put_that_ends_early_stores_nothing(
    live_server: Any, patient: Patient, local_media_root: Any
) -> None:
    document = DocumentFactory.create(patient=patient, size_bytes=100)
    signed = get_storage().sign_upload(
        object_name=document.object_name, content_type="application/pdf", size_bytes=100
    )
    address = urlsplit(live_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(
            (
                f"PUT {signed.url} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                "Content-Type: application/pdf\r\nContent-Length: 100\r\n\r\n%PDF-1.7"
            ).encode()
        )
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk

    assert reply.startswith(b"HTTP/1.1 400")
    assert b'"incomplete_upload"' in reply
    assert get_storage().stat(document.object_name) is None
