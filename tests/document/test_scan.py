"""The malware scan with a real clamd (tests/document/clamd.py), on both storage backends.

The task runs eagerly when confirm's transaction commits (the test settings); the retry test
runs a real worker on the broker.
"""

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.db import connection
from django.test import Client
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs
from rest_framework.test import APIClient

from audit.models import AuditEvent
from document.models import Document
from document.storage import QUARANTINE_PREFIX, LocalStorage, get_storage
from patient.models import Patient
from pms.models import FailedTask
from tests.document.clamd import EICAR, EICAR_SIGNATURE, Clamd
from tests.document.conftest import error_code
from tests.document.samples import pdf
from tests.document.test_upload_flow import CONFIRM_URL, SIGN_URL, put_file, seed_body
from tests.factories import DocumentFactory
from tests.gcs import QUARANTINE_BUCKET
from tests.workers import thread_worker, wait_for

BACKENDS = ["local", "gcs"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, scanner: Clamd) -> str:
    if request.param == "gcs":
        request.getfixturevalue("gcs_backend")
    return str(request.param)


def upload(client: APIClient, patient: Patient, body: bytes, content_type: str) -> int:
    """sign-upload and PUT, as the browser does, on either backend."""
    signed = client.post(
        SIGN_URL,
        seed_body(patient, content_type=content_type, size_bytes=len(body)),
        format="json",
    ).json()
    if signed["upload_url"].startswith("http://testserver/"):
        assert put_file(signed["upload_url"], body, content_type).status_code == 200
    else:
        put = requests.put(signed["upload_url"], data=body, headers=signed["headers"], timeout=10)
        assert put.status_code == 200
    return int(signed["document_id"])


def confirm(client: APIClient, document_id: int) -> Any:
    response = client.post(CONFIRM_URL, {"document_id": document_id}, format="json")
    assert response.status_code == 200, response.json()
    return response


def fetch(url: str) -> bytes:
    if url.startswith("http://testserver/"):
        response = Client().get(urlsplit(url).path)
        assert response.status_code == 200
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200
    return fetched.content


def download_url(client: APIClient, document_id: int) -> Any:
    return client.get(f"/api/document/documents/{document_id}/download_url/")


def quarantined_bytes(document: Document) -> bytes | None:
    storage = get_storage()
    if isinstance(storage, LocalStorage):
        path = storage.root / QUARANTINE_PREFIX / document.object_name
        return path.read_bytes() if path.exists() else None
    client = gcs.Client(
        project="pms-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": storage.endpoint},  # type: ignore[attr-defined]
    )
    blob = client.bucket(QUARANTINE_BUCKET).get_blob(document.object_name)
    return blob.download_as_bytes() if blob else None


def test_an_eicar_upload_is_infected_refused_quarantined_and_audited(
    backend: str,
    as_clinician: APIClient,
    patient: Patient,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    document_id = upload(as_clinician, patient, EICAR, "text/plain")
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = confirm(as_clinician, document_id)

    assert confirmed.json()["scan_status"] == "pending"
    document = Document.objects.get(pk=document_id)
    assert document.scan_status == "infected"
    assert document.scan_finding.startswith(EICAR_SIGNATURE)
    assert document.scanned_at is not None
    refused = download_url(as_clinician, document_id)
    assert refused.status_code == 409
    assert error_code(refused) == "document_quarantined"
    assert get_storage().stat(document.object_name) is None
    assert quarantined_bytes(document) == EICAR
    event = AuditEvent.objects.get(action="document.quarantine")
    assert (event.resource_id, event.patient_ids, event.actor_id, event.organization_id) == (
        str(document_id),
        [patient.pk],
        None,
        patient.organization_id,  # the clinic's auditors see it
    )
    assert as_clinician.get(f"/api/document/documents/{document_id}/").json()["scan_status"] == (
        "infected"
    )


def test_a_real_pdf_is_clean_and_downloads(
    backend: str,
    as_clinician: APIClient,
    patient: Patient,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    body = pdf()
    document_id = upload(as_clinician, patient, body, "application/pdf")
    with django_capture_on_commit_callbacks(execute=True):
        confirm(as_clinician, document_id)

    document = Document.objects.get(pk=document_id)
    assert (document.scan_status, document.scan_finding) == ("clean", "")
    response = download_url(as_clinician, document_id)
    assert response.status_code == 200
    assert fetch(response.json()["download_url"]) == body
    assert not AuditEvent.objects.filter(action="document.quarantine").exists()


def test_a_document_whose_scan_is_pending_is_not_downloadable(
    backend: str,
    as_clinician: APIClient,
    patient: Patient,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    document_id = upload(as_clinician, patient, pdf(), "application/pdf")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        confirm(as_clinician, document_id)

    pending = download_url(as_clinician, document_id)
    assert pending.status_code == 409
    assert error_code(pending) == "scan_pending"
    assert Document.objects.get(pk=document_id).scan_status == "pending"
    for callback in callbacks:  # the scan task among them
        callback()
    assert Document.objects.get(pk=document_id).scan_status == "clean"
    assert download_url(as_clinician, document_id).status_code == 200


def test_with_clamd_stopped_the_scan_errors_and_a_platform_admin_scans_again(
    backend: str,
    scanner: Clamd,
    as_clinician: APIClient,
    patient: Patient,
    django_capture_on_commit_callbacks: Callable[..., Any],
    django_user_model: Any,
) -> None:
    document_id = upload(as_clinician, patient, pdf(), "application/pdf")
    scanner.stop()
    with django_capture_on_commit_callbacks(execute=True):
        confirm(as_clinician, document_id)

    assert Document.objects.get(pk=document_id).scan_status == "error"
    assert FailedTask.objects.get().task_name == "document.scan"
    refused = download_url(as_clinician, document_id)
    assert error_code(refused) == "scan_pending"

    scanner.start()
    operator = django_user_model.objects.create_superuser("root", "root@example.com", "x-pass-1!")
    admin = Client()
    admin.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/admin/document/document/",
            {"action": "scan_again", "_selected_action": [document_id]},
        )
    assert response.status_code == 302
    assert Document.objects.get(pk=document_id).scan_status == "clean"
    assert download_url(as_clinician, document_id).status_code == 200


def test_scan_again_is_not_offered_to_a_clinic_admin(
    scanner: Clamd,
    admin_client_for: Any,
    clinic_admin: Any,
    patient: Patient,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    document = DocumentFactory.create(patient=patient, uploaded=True, scan_status="error")
    admin = admin_client_for(clinic_admin)

    page = admin.get("/admin/document/document/")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refused = admin.post(
            "/admin/document/document/",
            {"action": "scan_again", "_selected_action": [document.pk]},
        )

    assert page.status_code == 200
    assert b'value="archive"' in page.content
    assert b'value="scan_again"' not in page.content
    assert refused.status_code == 403
    assert callbacks == []
    assert Document.objects.get(pk=document.pk).scan_status == "error"


# --- retried by a real worker -------------------------------------------------------------------


@pytest.fixture
def worker() -> Iterator[None]:
    with thread_worker():
        yield


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_clamd_stopped_the_scan_goes_to_error_and_is_retried_once_clamd_is_back(
    backend: str, scanner: Clamd, as_clinician: APIClient, patient: Patient, worker: None
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a worker thread shares the database: PostgreSQL")
    document_id = upload(as_clinician, patient, pdf(), "application/pdf")
    scanner.stop()
    confirm(as_clinician, document_id)

    wait_for(
        lambda: Document.objects.filter(pk=document_id, scan_status="error").exists(),
        what="a failed scan",
    )
    assert error_code(download_url(as_clinician, document_id)) == "scan_pending"
    scanner.start()
    wait_for(
        lambda: Document.objects.filter(pk=document_id, scan_status="clean").exists(),
        timeout=90,
        what="the retried scan",
    )
    assert download_url(as_clinician, document_id).status_code == 200
    assert not FailedTask.objects.exists()


def test_a_gcs_object_overwritten_before_its_scan_is_not_scanned_in_its_place(
    scanner: Clamd,
    gcs_backend: Any,
    as_clinician: APIClient,
    patient: Patient,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    body = pdf()
    signed = as_clinician.post(
        SIGN_URL, seed_body(patient, size_bytes=len(body)), format="json"
    ).json()
    assert requests.put(signed["upload_url"], data=body, headers=signed["headers"], timeout=10).ok
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        confirm(as_clinician, signed["document_id"])
    # Another clean file: scanned unpinned, it would pass as this document's.
    swapped = body.replace(b"Count 0", b"Count 1")
    assert requests.put(
        signed["upload_url"], data=swapped, headers=signed["headers"], timeout=10
    ).ok

    for callback in callbacks:
        callback()

    document = Document.objects.get(pk=signed["document_id"])
    assert document.scan_status == "error"
    assert error_code(download_url(as_clinician, document.pk)) == "scan_pending"
