"""Idempotency-Key on the three creates (pms/idempotency.py)."""

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import IdempotencyKey, Organization, User
from audit.models import AuditEvent
from document.models import Document
from patient import services
from patient.models import Patient
from pms.idempotency import idempotency_purge_expired
from tests.concurrency import at_once
from tests.factories import PatientFactory

PATIENTS = "/api/patient/patients/"
BODY = {"full_name": "Ida Empotent", "date_of_birth": "1971-07-07", "phone": "+12025550177"}


def post(client: APIClient, url: str, body: dict[str, Any], key: str = "key-1") -> Any:
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(
    as_clinician: APIClient, organization: Organization
) -> None:
    first = post(as_clinician, PATIENTS, BODY)
    retry = post(as_clinician, PATIENTS, BODY)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert (retry["ETag"], retry["Location"]) == (first["ETag"], first["Location"])
    assert Patient.objects.filter(organization=organization).count() == 1
    replay = AuditEvent.objects.filter(action="patient.create").latest("id")
    assert replay.details["replayed"] is True
    assert replay.patient_ids == [first.json()["id"]]


def test_the_same_key_with_another_body_is_refused(
    as_clinician: APIClient, organization: Organization
) -> None:
    post(as_clinician, PATIENTS, BODY)

    response = post(as_clinician, PATIENTS, {**BODY, "full_name": "Someone Else"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Patient.objects.filter(organization=organization).count() == 1


def test_keys_belong_to_the_user_who_sent_them(
    as_clinician: APIClient, as_staff: APIClient, organization: Organization
) -> None:
    post(as_clinician, PATIENTS, BODY)

    other = post(as_staff, PATIENTS, {**BODY, "full_name": "Other Person", "phone": ""})

    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert Patient.objects.filter(organization=organization).count() == 2


def test_a_second_request_while_the_first_runs_is_told_to_wait(
    as_clinician: APIClient, organization: Organization, monkeypatch: Any
) -> None:
    original = services.patient_create
    inner: list[Any] = []

    def create_while_retried(**kwargs: Any) -> Patient:
        # The client's retry arrives while the first request is still being handled.
        inner.append(post(as_clinician, PATIENTS, BODY))
        return original(**kwargs)

    monkeypatch.setattr(services, "patient_create", create_while_retried)

    first = post(as_clinician, PATIENTS, BODY)

    assert first.status_code == 201
    (retry,) = inner
    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "idempotency_key_in_progress"
    assert Patient.objects.filter(organization=organization).count() == 1


def test_an_error_does_not_use_the_key_up(as_clinician: APIClient, organization: Organization):
    refused = post(as_clinician, PATIENTS, {**BODY, "phone": "not a phone"})
    corrected = post(as_clinician, PATIENTS, BODY)

    assert refused.status_code == 400
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected


def test_a_possible_duplicate_can_be_confirmed_under_the_same_key(
    as_clinician: APIClient, organization: Organization
) -> None:
    PatientFactory.create(
        organization=organization, full_name=BODY["full_name"], phone=BODY["phone"]
    )

    asked = post(as_clinician, PATIENTS, BODY)
    confirmed = post(as_clinician, PATIENTS, {**BODY, "confirm_new": True})

    assert (asked.status_code, confirmed.status_code) == (409, 201)


def test_a_key_older_than_a_day_starts_afresh(
    as_clinician: APIClient, organization: Organization, clinician: User
) -> None:
    post(as_clinician, PATIENTS, BODY)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))

    again = post(as_clinician, PATIENTS, {**BODY, "full_name": "Another Name", "phone": ""})

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert Patient.objects.filter(organization=organization).count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
def test_a_malformed_key_is_a_validation_error(as_clinician: APIClient, key: str) -> None:
    response = post(as_clinician, PATIENTS, BODY, key=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert not Patient.objects.exists()


def test_expired_keys_and_their_answers_are_purged(as_clinician: APIClient) -> None:
    post(as_clinician, PATIENTS, BODY, key="old")
    post(as_clinician, PATIENTS, {**BODY, "full_name": "Fresh Name", "phone": ""}, key="new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=24, seconds=1)
    )

    assert idempotency_purge_expired() == 1

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=2))
    output = StringIO()
    call_command("purge_idempotency_keys", stdout=output)
    assert output.getvalue() == "Deleted 1 expired idempotency key(s).\n"
    assert not IdempotencyKey.objects.exists()


@pytest.fixture
def local_storage(settings: Any, tmp_path: Path) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.usefixtures("local_storage")
@pytest.mark.parametrize("url", ["/api/document/documents/", "/api/document/sign-upload/"])
def test_document_creates_replay_too(
    as_staff: APIClient, organization: Organization, url: str
) -> None:
    patient = PatientFactory.create(organization=organization)
    body = {
        "patient_id": patient.pk,
        "document_type": "lab_result",
        "filename": "result.pdf",
        "content_type": "application/pdf",
        "size_bytes": 100,
    }

    first = post(as_staff, url, body)
    retry = post(as_staff, url, body)
    changed = post(as_staff, url, {**body, "size_bytes": 200})

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert changed.status_code == 422
    assert Document.objects.count() == 1


def test_the_header_is_documented_and_allowed_by_cors() -> None:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    for path in (PATIENTS, "/api/document/documents/", "/api/document/sign-upload/"):
        operation = paths[path]["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert {"409", "422"} <= set(operation["responses"]), path
    assert "idempotency-key" in django_settings.CORS_ALLOW_HEADERS
    assert "Idempotent-Replayed" in django_settings.CORS_EXPOSE_HEADERS


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_patient(
    organization: Organization, clinician: User, client_for: Callable[[User], APIClient]
) -> None:
    def send(index: int) -> Any:
        return post(client_for(clinician), PATIENTS, BODY, key="concurrent")

    responses = at_once(2, send)

    assert Patient.objects.filter(organization=organization).count() == 1
    # The second either found the first still running, or (had it lost the race by more than
    # the whole request) its stored answer.
    outcomes = sorted(
        (r.status_code, r.get("Idempotent-Replayed") or r.json().get("error", {}).get("code", ""))
        for r in responses
    )
    assert outcomes in (
        [(201, ""), (409, "idempotency_key_in_progress")],
        [(201, ""), (201, "true")],
    )
