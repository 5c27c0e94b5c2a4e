"""Bulk Data export: kick-off, progress, manifest, NDJSON files, cancel, expiry, roles."""

import json
import time
import tracemalloc
import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from document.models import Document
from document.storage import get_export_storage, get_storage
from fhir import export
from fhir.models import ExportJob, ExportStatus
from patient.models import Patient
from tests.factories import DocumentFactory, PatientFactory, UserFactory
from tests.fhir.conftest import FHIR_JSON, validate

ASYNC = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": FHIR_JSON}
NDJSON = "application/fhir+ndjson"


def bulk_clinic(organization, patients: int) -> None:
    """`patients` patients with one document each, inserted in bulk (no per-row saves)."""
    Patient.objects.bulk_create(
        (
            Patient(
                organization=organization,
                mrn=f"B-{n:07d}",
                full_name=f"Given{n} Family{n}",
                date_of_birth=date(1950 + n % 60, 1 + n % 12, 1 + n % 28),
                gender="MFOU"[n % 4],
            )
            for n in range(patients)
        ),
        batch_size=2000,
    )
    Document.objects.bulk_create(
        (
            Document(
                organization=organization,
                patient_id=patient_id,
                document_type="lab_result",
                title="Result",
                filename="result.pdf",
                content_type="application/pdf",
                size_bytes=100,
                object_name=f"documents/{organization.pk}/{uuid.uuid4().hex}",
                is_uploaded=True,
                uploaded_at=timezone.now(),
            )
            for patient_id in Patient.objects.filter(organization=organization).values_list(
                "pk", flat=True
            )
        ),
        batch_size=2000,
    )


def kick_off(client, capture, url="/fhir/R4/Patient/$export", **query):
    with capture(execute=True):
        response = client.get(url, query, **ASYNC)
    return response


def status_path(response) -> str:
    return response["Content-Location"].removeprefix("http://testserver")


def download(client, url: str) -> list[dict]:
    response = client.get(url.removeprefix("http://testserver"), HTTP_ACCEPT=NDJSON)
    assert response.status_code == 200
    assert response["Content-Type"] == NDJSON
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


@pytest.mark.slow
def test_an_export_of_ten_thousand_patients_end_to_end(
    as_admin,
    org_admin,
    organization,
    other_organization,
    fhir_local_storage,
    django_capture_on_commit_callbacks,
):
    bulk_clinic(organization, 10_000)
    PatientFactory.create(organization=other_organization)  # never exported
    started = time.monotonic()

    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    exported = time.monotonic() - started

    assert kicked.status_code == 202, kicked.content
    assert kicked["Content-Location"].startswith("http://testserver/fhir/R4/bulk-status/")
    validate(kicked.json())
    status = as_admin.get(status_path(kicked))
    assert status.status_code == 200
    assert status["Content-Type"].startswith("application/json")
    manifest = status.json()
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == "http://testserver/fhir/R4/Patient/$export"
    assert manifest["transactionTime"].endswith("Z")
    assert [(row["type"], row["count"]) for row in manifest["output"]] == [
        ("Patient", 10_000),
        ("DocumentReference", 10_000),
    ]
    patients = download(as_admin, manifest["output"][0]["url"])
    documents = download(as_admin, manifest["output"][1]["url"])
    for line in patients + documents:
        validate(line)
    assert len({line["id"] for line in patients}) == 10_000
    assert {line["identifier"][0]["system"] for line in patients} == {"urn:pms:northside:mrn"}
    assert {line["subject"]["reference"] for line in documents} == {
        f"Patient/{line['id']}" for line in patients
    }
    kick_event = AuditEvent.objects.get(action="export.kick_off")
    assert (kick_event.actor, kick_event.details["types"]) == (
        org_admin,
        ["Patient", "DocumentReference"],
    )
    assert AuditEvent.objects.get(action="export.status").details["patient_count"] == 10_000
    assert AuditEvent.objects.filter(action="export.file").count() == 2
    # The whole export (20,000 resources written) takes a few seconds on SQLite.
    assert exported < 60


@pytest.mark.slow
def test_memory_stays_flat_as_the_clinic_grows(admin_user_job, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_ROWS", 100)
    export.export_run(job_id=admin_user_job(50).pk)  # imports and caches warm up outside
    peaks = {}
    for size in (500, 2_000):
        job = admin_user_job(size)
        tracemalloc.start()
        export.export_run(job_id=job.pk)
        peaks[size] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert ExportJob.objects.get(pk=job.pk).status == ExportStatus.COMPLETED
    # Four times the rows, not four times the memory: rows are read a chunk at a time.
    assert peaks[2_000] < peaks[500] * 1.5, peaks


@pytest.fixture
def admin_user_job(organization, org_admin, fhir_local_storage):
    def make(patients: int) -> ExportJob:
        Document.objects.filter(organization=organization).delete()
        Patient.objects.filter(organization=organization).delete()
        bulk_clinic(organization, patients)
        return ExportJob.objects.create(
            organization=organization,
            requested_by=org_admin,
            request_url="http://testserver/fhir/R4/Patient/$export",
            base_url="http://testserver",
            types=["Patient", "DocumentReference"],
        )

    return make


def test_a_running_export_reports_its_progress(as_admin, org_admin, organization):
    job = ExportJob.objects.create(
        organization=organization,
        requested_by=org_admin,
        request_url="x",
        base_url="http://testserver",
        types=["Patient"],
        status=ExportStatus.IN_PROGRESS,
        progress=42,
    )

    response = as_admin.get(f"/fhir/R4/bulk-status/{job.key}")

    assert response.status_code == 202
    assert response["X-Progress"] == "42%"
    assert response["Retry-After"]


def test_type_and_since_narrow_the_export(
    as_admin, organization, fhir_local_storage, django_capture_on_commit_callbacks
):
    old = PatientFactory.create(organization=organization)
    Patient.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=10))
    recent = PatientFactory.create(organization=organization)
    DocumentFactory.create(patient=recent)
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")

    kicked = kick_off(as_admin, django_capture_on_commit_callbacks, _type="Patient", _since=since)

    manifest = as_admin.get(status_path(kicked)).json()
    assert [row["type"] for row in manifest["output"]] == ["Patient"]
    assert [line["id"] for line in download(as_admin, manifest["output"][0]["url"])] == [
        str(recent.pk)
    ]
    assert AuditEvent.objects.get(action="export.status").details["patient_count"] == 1


def test_a_group_export_is_the_named_clinic_only(
    as_admin,
    organization,
    other_organization,
    fhir_local_storage,
    django_capture_on_commit_callbacks,
):
    PatientFactory.create(organization=organization)

    own = kick_off(
        as_admin, django_capture_on_commit_callbacks, f"/fhir/R4/Group/{organization.pk}/$export"
    )
    foreign = kick_off(
        as_admin,
        django_capture_on_commit_callbacks,
        f"/fhir/R4/Group/{other_organization.pk}/$export",
    )

    assert own.status_code == 202
    assert as_admin.get(status_path(own)).json()["output"][0]["count"] == 1
    assert foreign.status_code == 404
    assert ExportJob.objects.count() == 1


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"HTTP_ACCEPT": FHIR_JSON}, {}),
        (ASYNC, {"_type": "Observation"}),
        (ASYNC, {"_outputFormat": "text/csv"}),
        (ASYNC, {"_since": "last week"}),
        (ASYNC, {"_elements": "id"}),
    ],
)
def test_a_bad_kick_off_is_a_400(as_admin, headers, query):
    response = as_admin.get("/fhir/R4/Patient/$export", query, **headers)

    assert response.status_code == 400
    assert validate(response.json()).issue[0].code == "invalid"
    assert ExportJob.objects.count() == 0


@pytest.mark.parametrize("who", ["clinician", "staff_user"])
def test_only_clinic_admins_export(request, client_for, who, organization):
    response = client_for(request.getfixturevalue(who)).get("/fhir/R4/Patient/$export", **ASYNC)

    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert ExportJob.objects.count() == 0


def test_a_job_and_its_files_belong_to_the_requester(
    as_admin,
    client_for,
    organization,
    other_organization,
    fhir_local_storage,
    django_capture_on_commit_callbacks,
):
    PatientFactory.create(organization=organization)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    file_url = as_admin.get(status_path(kicked)).json()["output"][0]["url"]
    colleague = client_for(UserFactory.create(role="admin", organization=organization))
    foreign = client_for(UserFactory.create(role="admin", organization=other_organization))

    for client in (colleague, foreign):
        assert client.get(status_path(kicked)).status_code == 404
        assert client.delete(status_path(kicked)).status_code == 404
        assert (
            client.get(file_url.removeprefix("http://testserver"), HTTP_ACCEPT=NDJSON).status_code
            == 404
        )
    assert ExportJob.objects.get().status == ExportStatus.COMPLETED


def test_delete_cancels_the_job_and_removes_its_files(
    as_admin, organization, fhir_local_storage, django_capture_on_commit_callbacks
):
    PatientFactory.create(organization=organization)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    assert list(fhir_local_storage.rglob("exports/*/*/*"))

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = as_admin.delete(status_path(kicked))

    assert cancelled.status_code == 202
    assert ExportJob.objects.get().status == ExportStatus.CANCELLED
    assert not list(fhir_local_storage.rglob("exports/*/*/*"))
    assert as_admin.get(status_path(kicked)).status_code == 404
    assert AuditEvent.objects.filter(action="export.cancel", status_code=202).count() == 1


def test_a_job_cancelled_while_running_stops_between_chunks(
    admin_user_job, monkeypatch, fhir_local_storage
):
    job = admin_user_job(50)
    monkeypatch.setattr(export, "CHUNK_ROWS", 10)
    pages = export._keyset_pages

    def cancel_after_first_page(rows):
        for number, page in enumerate(pages(rows)):
            if number == 1:
                ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.CANCELLED)
            yield page

    monkeypatch.setattr(export, "_keyset_pages", cancel_after_first_page)

    export.export_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.output) == (ExportStatus.CANCELLED, [])
    assert not list(fhir_local_storage.rglob("exports/*/*/*"))


def test_a_job_runs_once(admin_user_job):
    job = admin_user_job(3)
    export.export_run(job_id=job.pk)
    finished = ExportJob.objects.get(pk=job.pk).completed_at

    export.export_run(job_id=job.pk)

    assert ExportJob.objects.get(pk=job.pk).completed_at == finished


def test_finished_exports_expire_with_their_files(
    as_admin, organization, settings, fhir_local_storage, django_capture_on_commit_callbacks
):
    settings.FHIR_EXPORT_EXPIRY_HOURS = 2
    PatientFactory.create(organization=organization)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    file_url = as_admin.get(status_path(kicked)).json()["output"][0]["url"]

    job = ExportJob.objects.get()
    assert job.expires_at == job.completed_at + timedelta(hours=2)
    assert export.export_expire() == 0
    # Past the expiry (moving the job, not the clock: the access token must stay valid).
    ExportJob.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert as_admin.get(status_path(kicked)).status_code == 404
    assert (
        as_admin.get(file_url.removeprefix("http://testserver"), HTTP_ACCEPT=NDJSON).status_code
        == 404
    )
    assert export.export_expire() == 1
    assert ExportJob.objects.get().status == ExportStatus.EXPIRED
    assert not list(fhir_local_storage.rglob("exports/*/*/*"))


def test_a_job_held_by_a_live_run_is_left_to_it(admin_user_job):
    job = admin_user_job(3)
    other_run = uuid.uuid4()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.IN_PROGRESS, run_key=other_run, heartbeat_at=timezone.now()
    )

    assert export.export_run(job_id=job.pk) is False

    job.refresh_from_db()
    assert (job.status, job.run_key, job.output) == (ExportStatus.IN_PROGRESS, other_run, [])


def test_a_job_whose_worker_died_is_taken_over_and_finished(admin_user_job):
    job = admin_user_job(3)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.IN_PROGRESS,
        run_key=uuid.uuid4(),
        heartbeat_at=timezone.now() - export.STALE_AFTER - timedelta(seconds=1),
        progress=40,
    )

    assert export.export_run(job_id=job.pk) is True

    job.refresh_from_db()
    assert (job.status, job.progress, job.patient_count) == (ExportStatus.COMPLETED, 100, 3)


def test_a_run_that_was_taken_over_stops_and_leaves_the_files_alone(
    admin_user_job, monkeypatch, fhir_local_storage
):
    job = admin_user_job(50)
    monkeypatch.setattr(export, "CHUNK_ROWS", 10)
    pages = export._keyset_pages
    newer_run = uuid.uuid4()
    newer_file = export._object_name(job, "Patient")

    def taken_over_after_first_page(rows):
        for number, page in enumerate(pages(rows)):
            if number == 1:
                ExportJob.objects.filter(pk=job.pk).update(run_key=newer_run)
                # The newer run has written its file already.
                get_export_storage().write(newer_file, [b"{}\n"], content_type=NDJSON, max_bytes=10)
            yield page

    monkeypatch.setattr(export, "_keyset_pages", taken_over_after_first_page)

    export.export_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.run_key) == (ExportStatus.IN_PROGRESS, newer_run)
    assert get_export_storage().open(newer_file).read() == b"{}\n"


def test_a_failing_export_is_a_500_outcome_and_keeps_no_file(
    as_admin, admin_user_job, monkeypatch, fhir_local_storage
):
    job = admin_user_job(3)

    def broken(*args, **kwargs):
        raise RuntimeError("mapping failed")

    monkeypatch.setattr(export, "document_reference_resource", broken)

    export.export_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED
    assert not list(fhir_local_storage.rglob("exports/*/*/*"))
    response = as_admin.get(f"/fhir/R4/bulk-status/{job.key}")
    assert response.status_code == 500
    assert validate(response.json()).issue[0].code == "exception"


def test_no_document_route_reads_or_writes_an_export_file(
    as_admin, api_client, organization, fhir_local_storage, django_capture_on_commit_callbacks
):
    PatientFactory.create(organization=organization)
    kick_off(as_admin, django_capture_on_commit_callbacks)
    object_name = ExportJob.objects.get().output[0]["object_name"]
    storage = get_storage()
    # Even a validly signed document URL naming the export's object (none is ever issued).
    download = storage.sign_download(object_name=object_name, filename="x", content_type=NDJSON)
    upload = storage.sign_upload(
        object_name=object_name, content_type="application/pdf", size_bytes=4
    )

    read = api_client.get(download.url)
    written = api_client.put(upload.url, b"%PDF", content_type="application/pdf")

    assert (read.status_code, written.status_code) == (410, 410)
    assert {read.json()["error"]["code"], written.json()["error"]["code"]} == {"document_archived"}
    handle = get_export_storage().open(object_name)
    assert handle is not None
    assert handle.read().startswith(b'{"resourceType":"Patient"')
