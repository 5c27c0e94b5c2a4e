"""Confirm checks the stored bytes against the declared type (document/content.py)."""

from collections.abc import Callable
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from document.content import DOCX
from document.models import Document
from document.storage import LocalStorage
from patient.models import Patient
from tests.document.conftest import error_code
from tests.document.samples import EXE, HTML, SAMPLES, zip_without_word
from tests.document.test_upload_flow import CONFIRM_URL, SIGN_URL, put_file, seed_body

ALLOWED_TYPES = sorted(SAMPLES)
# text/plain takes any UTF-8 text, HTML included; an executable is never text.
HOSTILE = [
    (content_type, name, body)
    for content_type in ALLOWED_TYPES
    for name, body in (("html", HTML), ("exe", EXE))
    if not (content_type == "text/plain" and name == "html")
]


def upload_and_confirm(client: APIClient, patient: Patient, content_type: str, body: bytes) -> Any:
    signed = client.post(
        SIGN_URL,
        seed_body(patient, content_type=content_type, size_bytes=len(body)),
        format="json",
    ).json()
    assert put_file(signed["upload_url"], body, content_type).status_code == 200
    return client.post(CONFIRM_URL, {"document_id": signed["document_id"]}, format="json"), signed


@pytest.mark.parametrize("content_type", ALLOWED_TYPES)
def test_a_real_file_of_each_allowed_type_is_confirmed(
    as_clinician: APIClient, patient: Patient, content_type: str
) -> None:
    response, signed = upload_and_confirm(
        as_clinician, patient, content_type, SAMPLES[content_type]()
    )

    assert response.status_code == 200, response.json()
    document = Document.objects.get(pk=signed["document_id"])
    assert (document.is_uploaded, document.scan_status) == (True, "skipped")


@pytest.mark.parametrize(("content_type", "name", "body"), HOSTILE)
def test_a_hostile_body_declared_as_each_allowed_type_is_refused_and_removed(
    as_clinician: APIClient,
    patient: Patient,
    local_storage: LocalStorage,
    content_type: str,
    name: str,
    body: bytes,
) -> None:
    response, signed = upload_and_confirm(as_clinician, patient, content_type, body)

    assert response.status_code == 400
    assert error_code(response) == "content_mismatch"
    document = Document.objects.get(pk=signed["document_id"])
    assert document.is_uploaded is False
    assert local_storage.stat(document.object_name) is None


@pytest.mark.parametrize(
    ("content_type", "make"),
    [
        (DOCX, zip_without_word),
        ("text/plain", lambda: "caf\xe9".encode("latin-1")),
        ("text/plain", lambda: b"plain text with a \x00 in it"),
        ("application/dicom", lambda: b"DICM" + b"\x00" * 200),
    ],
    ids=["zip-without-word", "latin-1-text", "text-with-nul", "dicm-without-preamble"],
)
def test_near_misses_are_refused(
    as_clinician: APIClient, patient: Patient, content_type: str, make: Callable[[], bytes]
) -> None:
    response, _ = upload_and_confirm(as_clinician, patient, content_type, make())

    assert response.status_code == 400
    assert error_code(response) == "content_mismatch"


def test_the_content_check_reads_the_gcs_object_by_ranges(
    gcs_backend: Any, as_clinician: APIClient, patient: Patient
) -> None:
    for content_type, body, expected in ((DOCX, SAMPLES[DOCX](), 200), (DOCX, HTML, 400)):
        signed = as_clinician.post(
            SIGN_URL,
            seed_body(patient, content_type=content_type, size_bytes=len(body)),
            format="json",
        ).json()
        put = requests.put(signed["upload_url"], data=body, headers=signed["headers"], timeout=10)
        assert put.status_code == 200
        response = as_clinician.post(
            CONFIRM_URL, {"document_id": signed["document_id"]}, format="json"
        )
        assert response.status_code == expected
