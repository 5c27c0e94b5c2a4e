"""Races through the HTTP API on PostgreSQL: real threads, real connections, one barrier.

Concurrent OTP guesses are covered in tests/otp/test_concurrency.py; the service-level row-lock
tests of patients and documents live with their apps. These drive the whole request path.
"""

from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Organization, User
from document.models import Document
from document.storage import get_storage
from patient.models import Patient
from pms.throttles import AuthRateThrottle
from tests.concurrency import at_once
from tests.factories import DocumentFactory, PatientFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("postgres_only"),
]

REFRESH_URL = "/api/auth/token/refresh/"


@pytest.fixture
def no_auth_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-IP credential throttle is not under test here: every racer shares one IP."""
    monkeypatch.setattr(AuthRateThrottle, "rate", "10000/min", raising=False)


def test_twenty_concurrent_refreshes_of_one_token_rotate_it_exactly_once(
    no_auth_throttle: None, clinician: User
) -> None:
    refresh = RefreshToken.for_user(clinician)

    def use(_: int) -> tuple[int, Any]:
        response = APIClient().post(REFRESH_URL, {"refresh": str(refresh)})
        return response.status_code, response.json()

    results = at_once(20, use)

    winners = [body for status, body in results if status == 200]
    losers = [body for status, body in results if status != 200]
    assert len(winners) == 1
    assert [status for status, _ in results].count(401) == 19
    assert {body["error"]["code"] for body in losers} == {"token_not_valid"}
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).count() == 1
    # The winner's new refresh token is the one live successor: it rotates once more.
    again = APIClient().post(REFRESH_URL, {"refresh": winners[0]["refresh"]})
    assert again.status_code == 200


def test_fifty_concurrent_patches_with_one_if_match_let_exactly_one_win(
    organization: Organization, clinician: User
) -> None:
    patient = PatientFactory.create(organization=organization, notes="original")
    token = RefreshToken.for_user(clinician).access_token

    def patch(index: int) -> tuple[int, Any]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.patch(
            f"/api/patient/patients/{patient.pk}/",
            {"notes": f"written by racer {index}"},
            format="json",
            HTTP_IF_MATCH='"1"',
        )
        return response.status_code, response.json()

    results = at_once(50, patch)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [412] * 49
    assert {body["error"]["code"] for status, body in results if status == 412} == {
        "precondition_failed"
    }
    winner = next(body for status, body in results if status == 200)
    patient.refresh_from_db()
    assert (patient.notes, patient.version) == (winner["notes"], 2)
    assert winner["version"] == 2
    assert patient.history.count() == 2  # type: ignore[attr-defined]


def test_two_concurrent_confirms_of_one_upload_end_in_one_document_and_one_state(
    settings: Any, tmp_path: Path, organization: Organization, clinician: User
) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    body = b"%PDF-1.7 racing confirm"
    patient: Patient = PatientFactory.create(organization=organization)
    document = DocumentFactory.create(patient=patient, size_bytes=len(body))
    get_storage().write(  # type: ignore[attr-defined]
        document.object_name, [body], content_type="application/pdf", max_bytes=len(body)
    )
    token = RefreshToken.for_user(clinician).access_token

    def confirm(_: int) -> tuple[int, Any]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post("/api/document/confirm/", {"document_id": document.pk})
        return response.status_code, response.json()

    results = at_once(2, confirm)

    assert [status for status, _ in results] == [200, 200]
    assert Document.objects.count() == 1
    document.refresh_from_db()
    assert document.is_uploaded
    states = {
        (answer["uploaded_at"], answer["checksum"], answer["size_bytes"]) for _, answer in results
    }
    assert len(states) == 1
    uploaded_at, checksum, size = states.pop()
    assert (checksum, size) == (document.checksum, len(body))
    assert document.uploaded_at is not None
    assert uploaded_at.replace("Z", "+00:00") == document.uploaded_at.isoformat()
