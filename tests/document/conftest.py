"""Document fixtures: local storage in a temporary MEDIA_ROOT (the GCS emulator is
`tests/gcs.py`), clamd, and documents."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from document.models import Document
from document.storage import LocalStorage, get_storage
from patient.models import Patient
from tests.document.clamd import Clamd, require_clamd
from tests.factories import DocumentFactory, PatientFactory


@pytest.fixture(autouse=True)
def local_media_root(settings: Any, tmp_path: Path) -> Path:
    """Every document test stores files in its own directory, never in var/media."""
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    """One clamd for the session (tests/document/clamd.py); skips (fails on CI) without it."""
    daemon = Clamd(require_clamd(), tmp_path_factory.mktemp("clamd"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def scanner(settings: Any, clamd: Clamd) -> Iterator[Clamd]:
    """The scanner on, pointed at the session's clamd; clamd is running again afterwards."""
    settings.DOCUMENT_SCANNER = "clamd"
    settings.CLAMD_HOST = "127.0.0.1"
    settings.CLAMD_PORT = clamd.port
    yield clamd
    if not clamd.running:
        clamd.start()


@pytest.fixture
def pdf_bytes() -> Callable[[int], bytes]:
    """A PDF-looking body of exactly `size` bytes."""

    def make(size: int = 2048) -> bytes:
        header = b"%PDF-1.7\n"
        return (header + b"0" * size)[:size]

    return make


@pytest.fixture
def patient(organization: Organization) -> Patient:
    return PatientFactory.create(organization=organization)


@pytest.fixture
def as_foreign(client_for: Callable[[User], APIClient], foreign_clinician: User) -> APIClient:
    return client_for(foreign_clinician)


@pytest.fixture
def local_storage() -> LocalStorage:
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    return storage


@pytest.fixture
def stored_document(patient: Patient, local_storage: LocalStorage) -> Document:
    """An uploaded document whose bytes really are in (local) storage."""
    body = b"%PDF-1.7 stored document"
    document = DocumentFactory.create(
        patient=patient, uploaded=True, size_bytes=len(body), filename="stored.pdf"
    )
    local_storage.write(
        document.object_name, [body], content_type="application/pdf", max_bytes=len(body)
    )
    return document


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def error_details(response: Any) -> dict[str, Any]:
    return dict(response.json()["error"]["details"])


def ids(response: Any) -> list[int]:
    return [row["id"] for row in response.json()["results"]]
