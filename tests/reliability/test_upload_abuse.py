"""Upload abuse end to end: a hostile filename travels the whole flow and lands nowhere.

The document app's tests cover each rule on its own (tests/document: oversize and wrong type at
sign-upload and at PUT, expired and tampered URLs, confirm of another clinic's document, object
names that cannot leave the media root, filename sanitizing). This one drives one hostile upload
through sign-upload, PUT, confirm, rename and download and checks the file system around the media
root and the headers the browser finally gets.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from document.models import Document
from tests.factories import PatientFactory

HOSTILE_NAMES = [
    "../../../../tmp/owned.pdf",
    "..\\..\\windows\\system32\\evil.pdf",
    "report\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>.pdf",
    "quote\".pdf; filename*=UTF-8''evil.exe",
    "escape\x1b[31m\x07bell.pdf",
    "\u202egnp.exe\u202c.pdf",
]
PDF = b"%PDF-1.7\nhostile upload\n"


@pytest.fixture
def sandbox(settings: Any, tmp_path: Path) -> Path:
    """The media root sits inside an otherwise empty directory: anything written beside it is
    a file that escaped."""
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "sandbox" / "media"
    return tmp_path / "sandbox"


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_a_hostile_filename_is_stored_nowhere_but_the_generated_object(
    sandbox: Path,
    client_for: Callable[[User], APIClient],
    clinician: User,
    organization: Organization,
    hostile: str,
) -> None:
    client = client_for(clinician)
    patient = PatientFactory.create(organization=organization)

    signed = client.post(
        "/api/document/sign-upload/",
        {
            "patient_id": patient.pk,
            "document_type": "lab_result",
            "filename": hostile,
            "title": hostile,
            "content_type": "application/pdf",
            "size_bytes": len(PDF),
        },
        format="json",
    )
    assert signed.status_code == 201, signed.content
    put = APIClient().put(signed.json()["upload_url"], PDF, content_type="application/pdf")
    assert put.status_code == 200
    document_id = signed.json()["document_id"]
    assert client.post("/api/document/confirm/", {"document_id": document_id}).status_code == 200
    renamed = client.patch(
        f"/api/document/documents/{document_id}/", {"filename": hostile}, format="json"
    )
    assert renamed.status_code == 200

    document = Document.objects.get(pk=document_id)
    # The bytes (and the backend's metadata sidecar) under the generated name, in the media root.
    stored_files = files_under(sandbox)
    assert f"media/{document.object_name}" in stored_files
    assert all(name.startswith(f"media/{document.object_name}") for name in stored_files)
    for stored in (document.filename, renamed.json()["filename"]):
        assert not set(stored) & {"/", "\\", "\r", "\n", "\x00", "\x1b", "\u202e"}
        assert stored not in ("", ".", "..")

    download = client.get(f"/api/document/documents/{document_id}/download_url/").json()
    file = APIClient().get(download["download_url"])
    assert file.status_code == 200
    disposition = file["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert file["Content-Type"] == "application/pdf"
    assert file["X-Content-Type-Options"] == "nosniff"
    assert b"".join(file.streaming_content) == PDF  # type: ignore[attr-defined]


def test_a_null_byte_in_a_filename_is_refused_and_nothing_is_stored(
    sandbox: Path,
    client_for: Callable[[User], APIClient],
    clinician: User,
    organization: Organization,
) -> None:
    patient = PatientFactory.create(organization=organization)

    refused = client_for(clinician).post(
        "/api/document/sign-upload/",
        {
            "patient_id": patient.pk,
            "document_type": "lab_result",
            "filename": "scan.pdf\x00.exe",
            "content_type": "application/pdf",
            "size_bytes": len(PDF),
        },
        format="json",
    )

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "validation_error"
    assert "filename" in refused.json()["error"]["details"]
    assert not Document.objects.exists()
    assert files_under(sandbox) == []
