"""The trail cannot be skipped: what the database refuses is escaped before the INSERT, and when
the INSERT fails anyway, a request for patient data is refused with nothing of the data.

PostgreSQL refuses NUL characters in text and jsonb, SQLite takes them: the NUL tests prove
something only on PostgreSQL, where CI runs them. The failing INSERT is a real one: a trigger
makes the database refuse every new audit row.
"""

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from document.models import Document
from document.services import document_sign_download
from document.storage import get_local_storage
from patient.models import Patient
from tests.audit.test_coverage import ENDPOINTS, endpoint_url
from tests.factories import TEST_PASSWORD, DocumentFactory, PatientFactory

PATIENTS_URL = "/api/patient/patients/"

_REFUSE_INSERTS = {
    "postgresql": [
        "CREATE FUNCTION audit_refuse_insert() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit storage refuses rows'; END $$",
        "CREATE TRIGGER audit_refuse_insert BEFORE INSERT ON audit_auditevent "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_insert()",
    ],
    "sqlite": [
        "CREATE TRIGGER audit_refuse_insert BEFORE INSERT ON audit_auditevent "
        "BEGIN SELECT RAISE(ABORT, 'audit storage refuses rows'); END",
    ],
}
_ALLOW_INSERTS = {
    "postgresql": [
        "DROP TRIGGER audit_refuse_insert ON audit_auditevent",
        "DROP FUNCTION audit_refuse_insert()",
    ],
    "sqlite": ["DROP TRIGGER audit_refuse_insert"],
}


@pytest.fixture
def audit_refuses_rows(transactional_db: None) -> Iterator[None]:
    """The audit table refuses every INSERT until the test ends. Outside a test transaction:
    on PostgreSQL a failed statement aborts the transaction it runs in, and a request in
    production runs in none."""
    with connection.cursor() as cursor:
        for sql in _REFUSE_INSERTS[connection.vendor]:
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in _ALLOW_INSERTS[connection.vendor]:
                cursor.execute(sql)


def assert_audit_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "audit_unavailable"
    assert set(response.json()) == {"error"}
    assert response["Cache-Control"] == "no-store"


# --- what PostgreSQL refuses is escaped ------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "pattern", "method"),
    ENDPOINTS,
    ids=[f"{method.upper()} {route}" for route, _, method in ENDPOINTS],
)
def test_a_nul_in_a_parameter_name_and_a_body_key_still_leaves_a_trace(
    client_for, org_admin, organization, route, pattern, method
):
    patient = PatientFactory.create(organization=organization)
    document = DocumentFactory.create(patient=patient)
    url = endpoint_url(pattern, route, patient.pk, document.pk) + "?page_size=100&%00=1"
    before = AuditEvent.objects.count()

    response = client_for(org_admin).generic(
        method.upper(), url, json.dumps({"\u0000": 1}), content_type="application/json"
    )

    assert response.status_code < 500, response.content
    assert response.status_code == 400 or AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("id")
    assert event.status_code == response.status_code
    assert "\\x00" in event.details["params"]


def test_a_page_of_patients_asked_for_with_a_nul_is_on_record(as_clinician, organization):
    patients = PatientFactory.create_batch(3, organization=organization)

    response = as_clinician.get(f"{PATIENTS_URL}?page_size=100&%00")

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="patient.list")
    assert sorted(event.patient_ids) == sorted(patient.pk for patient in patients)
    assert event.details["params"] == ["\\x00", "page_size"]


def test_a_patch_with_a_nul_or_a_lone_surrogate_key_is_on_record(as_clinician, organization):
    patient = PatientFactory.create(organization=organization)
    # A lone surrogate can only arrive as a JSON escape: UTF-8 cannot carry one.
    body = '{"\\u0000": 1, "\\ud800": 2, "notes": "new"}'

    response = as_clinician.patch(
        f"{PATIENTS_URL}{patient.pk}/", body, content_type="application/json"
    )

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="patient.partial_update")
    assert set(event.details["fields"]) == {"\\ud800", "\\x00", "notes"}
    assert event.patient_ids == [patient.pk]


def test_nuls_in_the_path_and_headers_are_escaped(client_for, clinician, organization):
    patient = PatientFactory.create(organization=organization)
    document = DocumentFactory.create(patient=patient, uploaded=True)

    response = client_for(clinician).get(
        f"/api/document/documents/{document.pk}/download_url/",
        {"\x00": "1"},
        HTTP_USER_AGENT="agent\x00smith",
    )
    unknown = client_for(clinician).get("/api/patient/pat%00ients/")

    assert response.status_code == 200
    assert unknown.status_code == 404
    download = AuditEvent.objects.get(action="document.download_url")
    assert download.user_agent == "agent\\x00smith"
    assert download.patient_ids == [patient.pk]
    unknown_event = AuditEvent.objects.get(action="patient.unknown_path")
    assert unknown_event.path == "/api/patient/pat\\x00ients/"


# --- refused before the view -------------------------------------------------------------


WRITE_PATHS = [PATIENTS_URL, "/api/document/documents/", "/api/document/sign-upload/"]


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_an_oversized_body_is_refused_and_on_record(as_clinician, clinician, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = as_clinician.post(
        path, json.dumps({"notes": "x" * 2048}), content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get()
    assert (event.status_code, event.outcome, event.actor) == (413, "failed", clinician)
    assert event.details == {"fields": [], "error": "payload_too_large"}


@pytest.mark.parametrize("path", WRITE_PATHS)
@pytest.mark.parametrize(
    ("body", "content_type", "status_code", "code"),
    [
        ("full_name=x", "text/plain", 415, "unsupported_media_type"),
        ('{"full_name": ', "application/json", 400, "parse_error"),
    ],
    ids=["415", "bad-json"],
)
def test_a_body_the_api_cannot_read_is_refused_and_on_record(
    as_clinician, clinician, path, body, content_type, status_code, code
):
    response = as_clinician.post(path, body, content_type=content_type)

    assert response.status_code == status_code
    assert response.json()["error"]["code"] == code
    event = AuditEvent.objects.get()
    assert (event.status_code, event.actor, event.path) == (status_code, clinician, path)
    assert event.details["error"] == code


def test_a_body_over_the_limit_outside_patient_data_is_still_refused_early(
    api_client, db, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = api_client.post(
        "/api/otp/generate/", json.dumps({"email": "x" * 2048}), content_type="application/json"
    )

    assert response.status_code == 413
    assert AuditEvent.objects.get().status_code == 413  # the OTP view is audited too


# --- the INSERT fails: the request fails -----------------------------------------------------


@pytest.fixture
def patient(organization):
    return PatientFactory.create(organization=organization, full_name="Ottilie Quarrington")


def test_a_read_whose_event_cannot_be_written_returns_no_data(
    client_for, clinician, patient, audit_refuses_rows
):
    client = client_for(clinician)

    for url in (PATIENTS_URL, f"{PATIENTS_URL}{patient.pk}/", f"{PATIENTS_URL}search/?q=ottilie"):
        response = client.get(url)

        assert_audit_unavailable(response)
        assert b"Quarrington" not in response.content
        assert "ETag" not in response


def test_a_download_url_whose_event_cannot_be_written_is_not_given(
    client_for, clinician, patient, audit_refuses_rows
):
    document = DocumentFactory.create(patient=patient, uploaded=True)

    response = client_for(clinician).get(f"/api/document/documents/{document.pk}/download_url/")

    assert_audit_unavailable(response)
    assert b"download_url" not in response.content


def test_a_file_download_whose_event_cannot_be_written_sends_no_byte(
    clinician, patient, settings, tmp_path, audit_refuses_rows
):
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    body = b"%PDF-1.7 ottilie's scan"
    document = DocumentFactory.create(patient=patient, uploaded=True, size_bytes=len(body))
    get_local_storage().write(
        document.object_name, [body], content_type=document.content_type, max_bytes=len(body)
    )
    signed = document_sign_download(document=document)

    response = Client().get(urlsplit(signed.url).path)

    assert_audit_unavailable(response)
    assert body not in response.content


def test_a_write_whose_event_cannot_be_written_is_not_kept(
    client_for, clinician, patient, audit_refuses_rows
):
    client = client_for(clinician)

    created = client.post(
        PATIENTS_URL, {"full_name": "Never Stored", "age": 30, "gender": "F"}, format="json"
    )
    updated = client.patch(f"{PATIENTS_URL}{patient.pk}/", {"notes": "changed"}, format="json")
    archived = client.delete(f"{PATIENTS_URL}{patient.pk}/")
    signed = client.post(
        "/api/document/sign-upload/",
        {
            "filename": "scan.pdf",
            "content_type": "application/pdf",
            "size_bytes": 10,
            "patient_id": patient.pk,
            "document_type": "lab_result",
        },
        format="json",
    )

    for response in (created, updated, archived, signed):
        assert_audit_unavailable(response)
    assert not Patient.objects.filter(full_name="Never Stored").exists()
    patient_now = Patient.objects.get(pk=patient.pk)
    assert (patient_now.notes, patient_now.version, patient_now.is_active) == (
        patient.notes,
        patient.version,
        True,
    )
    assert not Document.objects.filter(filename="scan.pdf").exists()
    assert AuditEvent.objects.count() == 0


def test_a_sign_in_whose_event_cannot_be_written_still_signs_in(
    api_client, clinician, audit_refuses_rows, caplog
):
    # Sign-in shows no patient data, and every request the token then makes fails closed.

    response = api_client.post(
        "/api/auth/token/", {"username": clinician.username, "password": TEST_PASSWORD}
    )

    assert response.status_code == 200, response.content
    assert "could not record audit event auth.token_obtain" in caplog.text


# --- the Django admin fails closed too --------------------------------------------------------


def test_an_admin_page_whose_event_cannot_be_written_shows_no_patient(
    audit_refuses_rows: None, clinic_admin, admin_client_for
) -> None:
    patient = PatientFactory.create(organization=clinic_admin.organization, full_name="Hidden Hu")
    client = admin_client_for(clinic_admin)

    for url in (
        "/admin/patient/patient/",
        f"/admin/patient/patient/{patient.pk}/change/",
        f"/admin/patient/patient/{patient.pk}/history/",
    ):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.json()["error"]["code"] == "audit_unavailable"
        assert b"Hidden Hu" not in response.content


def test_an_admin_change_whose_event_cannot_be_written_is_not_kept(
    audit_refuses_rows: None, clinic_admin, admin_client_for
) -> None:
    patient = PatientFactory.create(organization=clinic_admin.organization, full_name="Kept Kim")
    client = admin_client_for(clinic_admin)

    archive = client.post(
        "/admin/patient/patient/", {"action": "archive", "_selected_action": [patient.pk]}
    )

    assert archive.status_code == 503
    patient.refresh_from_db()
    assert (patient.is_active, patient.version) == (True, 1)
