"""No secret, token, code or PHI value in the logs or the audit trail of a full working day.

Every logger is captured at DEBUG while one flow runs through the API: password sign-in (and a
failed one), refresh, logout, OTP sign-in (and a wrong code), patient create/read/update/list/
search, the whole document upload and download, and a few denied requests. Then every captured
line, traceback included, and every audit event is searched for each sensitive value the flow
used.
"""

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from accounts.models import Organization, Role, User
from audit.models import AuditEvent
from otp.services import CODE_LENGTH
from tests.factories import TEST_PASSWORD, UserFactory

WRONG_PASSWORD = "Wr0ng-Pa55word-Guess"
PATIENT = {
    "full_name": "Philippa Quartermaine",
    "email": "philippa.q@patients.example",
    "phone": "+442079460958",
    "date_of_birth": "1961-03-14",
    "gender": "F",
    "address": "17 Larkspur Mews, Oxford",
    "notes": "Allergic to penicillin; mild asthma",
}
FILENAME = "quartermaine-biopsy-results.pdf"
TITLE = "Biopsy results Quartermaine"
FILE_BYTES = b"%PDF-1.7\nconfidential biopsy body\n"
RECORDED_ACTIONS = {
    "auth.token_obtain",
    "auth.token_refresh",
    "auth.logout",
    "otp.generate",
    "otp.verify",
    "patient.create",
    "patient.retrieve",
    "patient.list",
    "patient.search",
    "patient.partial_update",
    "document.sign_upload",
    "document.confirm",
    "document.download_url",
}


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def nurse(organization: Organization) -> User:
    return UserFactory.create(
        username="nina", email="nina.nurse@clinic.example", role=Role.CLINICIAN,
        organization=organization,
    )  # fmt: skip


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def run_the_flow(nurse: User, staff_user: User, capture_on_commit: Any) -> list[str]:
    """Drives the API like a clinic's day; returns every sensitive value it handled."""
    anonymous = APIClient()
    secrets = [TEST_PASSWORD, WRONG_PASSWORD, settings.SECRET_KEY, nurse.email]

    assert anonymous.post(
        "/api/auth/token/", {"username": nurse.username, "password": WRONG_PASSWORD}
    ).status_code == 401  # fmt: skip
    pair = anonymous.post(
        "/api/auth/token/", {"username": nurse.username, "password": TEST_PASSWORD}
    ).json()
    rotated = anonymous.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}).json()
    reused = anonymous.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert reused.status_code == 401
    secrets += [pair["access"], pair["refresh"], rotated["access"], rotated["refresh"]]

    with capture_on_commit(execute=True):
        assert anonymous.post(
            "/api/otp/generate/", {"email": nurse.email, "purpose": "login"}
        ).status_code == 202  # fmt: skip
    code = mail.outbox[-1].body.split("Your one-time code is: ")[1][:CODE_LENGTH]
    wrong_code = f"{(int(code) + 1) % 10**CODE_LENGTH:0{CODE_LENGTH}d}"
    assert anonymous.post(
        "/api/otp/verify/", {"email": nurse.email, "purpose": "login", "code": wrong_code}
    ).status_code == 400  # fmt: skip
    by_code = anonymous.post(
        "/api/otp/verify/", {"email": nurse.email, "purpose": "login", "code": code}
    ).json()
    secrets += [code, wrong_code, by_code["access"], by_code["refresh"]]

    client = bearer(by_code["access"])
    created = client.post("/api/patient/patients/", PATIENT)
    assert created.status_code == 201, created.json()
    patient_id = created.json()["id"]
    secrets += [value for key, value in PATIENT.items() if key not in ("gender", "date_of_birth")]
    assert client.get(f"/api/patient/patients/{patient_id}/").status_code == 200
    assert client.get("/api/patient/patients/", {"search": "Quartermaine"}).status_code == 200
    assert (
        client.get("/api/patient/patients/search/", {"q": "Philipa Quartermane"}).status_code == 200
    )
    assert client.get("/api/patient/patients/", {"search": PATIENT["phone"]}).status_code == 200
    updated = client.patch(
        f"/api/patient/patients/{patient_id}/",
        {"notes": "Penicillin allergy confirmed by Dr Oyelaran"},
        HTTP_IF_MATCH='"1"',
    )
    assert updated.status_code == 200
    stale = client.patch(
        f"/api/patient/patients/{patient_id}/", {"address": "9 Hidden Lane"}, HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 412
    invalid = client.post(
        "/api/patient/patients/",
        {**PATIENT, "email": "philippa at nowhere", "phone": "call 0207 946 0958"},
    )
    assert invalid.status_code == 400
    secrets += ["Dr Oyelaran", "9 Hidden Lane", "philippa at nowhere", "0207 946 0958"]
    assert client.get(f"/api/patient/patients/{patient_id}/history/").status_code == 200
    assert client.get(f"/api/patient/patients/{patient_id}/summary/").status_code == 200

    signed = client.post(
        "/api/document/sign-upload/",
        {
            "patient_id": patient_id,
            "document_type": "lab_result",
            "filename": FILENAME,
            "title": TITLE,
            "content_type": "application/pdf",
            "size_bytes": len(FILE_BYTES),
        },
    ).json()
    put = anonymous.put(signed["upload_url"], FILE_BYTES, content_type="application/pdf")
    assert put.status_code == 200
    confirmed = client.post("/api/document/confirm/", {"document_id": signed["document_id"]})
    assert confirmed.json()["is_uploaded"] is True
    download = client.get(f"/api/document/documents/{signed['document_id']}/download_url/").json()
    file = anonymous.get(download["download_url"])
    assert b"".join(file.streaming_content) == FILE_BYTES  # type: ignore[attr-defined]
    tampered = anonymous.get(download["download_url"].replace("/files/", "/files/x"))
    assert tampered.status_code == 403
    upload_token = signed["upload_url"].rstrip("/").rsplit("/", 1)[-1]
    download_token = download["download_url"].rstrip("/").rsplit("/", 1)[-1]
    secrets += [FILENAME, TITLE, FILE_BYTES.decode().strip(), upload_token, download_token]

    # Denied on the way: a colleague's role, a forged token.
    colleague = APIClient()
    colleague.force_authenticate(staff_user)
    assert colleague.get(
        f"/api/document/documents/{signed['document_id']}/download_url/"
    ).status_code == 403  # fmt: skip
    forged = bearer(by_code["access"][:-4] + "AAAA")
    assert forged.get("/api/patient/patients/").status_code == 401

    assert (
        anonymous.post("/api/auth/token/blacklist/", {"refresh": rotated["refresh"]}).status_code
        == 200
    )
    return secrets


def test_no_secret_token_code_or_phi_value_reaches_the_logs_or_the_audit_trail(
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
    media_root: Path,
    nurse: User,
    staff_user: User,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger propagates to it

    secrets = run_the_flow(nurse, staff_user, django_capture_on_commit_callbacks)

    logs = caplog.text
    assert len(caplog.records) > 10, "the flow should have logged (warnings, audit, otp)"
    leaked_to_logs = [value for value in secrets if value.lower() in logs.lower()]
    assert leaked_to_logs == []

    events = [model_to_dict(event) for event in AuditEvent.objects.all()]
    # The trail was written (so it was searched): every step of the flow is on record.
    assert {event["action"] for event in events} >= RECORDED_ACTIONS
    trail = json.dumps(events, default=str)
    leaked_to_trail = [value for value in secrets if value.lower() in trail.lower()]
    assert leaked_to_trail == []
