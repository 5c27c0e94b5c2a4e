"""Bulk Data export with the `gcs` backend, against the GCS emulator (tests/gcs.py): the files
are streamed into the bucket, served from it behind the bearer token, and deleted from it."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.utils import timezone

from audit.models import AuditEvent
from document import storage as storage_module
from document.storage import get_export_storage
from fhir import export
from fhir.models import ExportJob, ExportStatus
from tests.fhir.conftest import validate
from tests.fhir.test_export import NDJSON, bulk_clinic, download, kick_off, status_path
from tests.gcs import EMULATOR_BUCKET, EXPORT_BUCKET, Emulator

PATIENTS = 1_500


@pytest.fixture
def gcs_exports(
    gcs_backend: Emulator, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """The gcs backend, small keyset pages and upload requests (so a file of 1,500 patients is
    several of each), and a MEDIA_ROOT that must stay empty."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(export, "CHUNK_ROWS", 200)
    monkeypatch.setattr(storage_module, "_GCS_WRITE_CHUNK_BYTES", 256 * 1024)
    return gcs_backend


def bucket_objects(emulator: Emulator, bucket: str = EMULATOR_BUCKET) -> dict[str, int]:
    """Name → size of every object in the bucket, as the emulator's JSON API lists them."""
    listed = requests.get(f"{emulator.url}/storage/v1/b/{bucket}/o", timeout=10)
    assert listed.status_code == 200
    return {item["name"]: int(item["size"]) for item in listed.json().get("items", [])}


def test_an_export_streams_into_the_bucket_and_is_served_from_it(
    as_admin, organization, gcs_exports, settings, django_capture_on_commit_callbacks
):
    bulk_clinic(organization, PATIENTS)

    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)

    manifest = as_admin.get(status_path(kicked)).json()
    assert [(row["type"], row["count"]) for row in manifest["output"]] == [
        ("Patient", PATIENTS),
        ("DocumentReference", PATIENTS),
    ]
    job = ExportJob.objects.get()
    objects = bucket_objects(gcs_exports)
    assert sorted(objects) == [
        f"exports/{organization.pk}/{job.key.hex}/DocumentReference",
        f"exports/{organization.pk}/{job.key.hex}/Patient",
    ]
    assert all(size > 256 * 1024 for size in objects.values())  # several upload requests each
    assert not any(Path(settings.MEDIA_ROOT).rglob("*"))  # nothing went through a local disk
    patients = download(as_admin, manifest["output"][0]["url"])
    documents = download(as_admin, manifest["output"][1]["url"])
    assert len({line["id"] for line in patients}) == PATIENTS
    assert len(documents) == PATIENTS
    for line in patients + documents:
        validate(line)
    assert AuditEvent.objects.filter(action="export.file", status_code=200).count() == 2


def test_a_file_url_needs_the_requesters_token_and_is_never_a_redirect(
    as_admin,
    api_client,
    client_for,
    foreign_clinic_admin,
    organization,
    gcs_exports,
    django_capture_on_commit_callbacks,
):
    bulk_clinic(organization, 3)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    file_path = as_admin.get(status_path(kicked)).json()["output"][0]["url"]
    file_path = file_path.removeprefix("http://testserver")

    served = as_admin.get(file_path, HTTP_ACCEPT=NDJSON)
    anonymous = api_client.get(file_path, HTTP_ACCEPT=NDJSON)
    foreign = client_for(foreign_clinic_admin).get(file_path, HTTP_ACCEPT=NDJSON)

    assert served.status_code == 200
    assert "Location" not in served
    assert len(b"".join(served.streaming_content).splitlines()) == 3
    assert (anonymous.status_code, foreign.status_code) == (401, 404)
    assert list(
        AuditEvent.objects.filter(action="export.file")
        .order_by("pk")
        .values_list("status_code", flat=True)
    ) == [200, 401, 404]


def test_a_file_overwritten_in_the_bucket_is_not_served_in_its_place(
    as_admin, organization, gcs_exports, django_capture_on_commit_callbacks
):
    bulk_clinic(organization, 3)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    file_url = as_admin.get(status_path(kicked)).json()["output"][0]["url"]
    get_export_storage().write(
        ExportJob.objects.get().output[0]["object_name"],
        [b'{"resourceType":"Patient","id":"forged"}\n'],
        content_type=NDJSON,
        max_bytes=100,
    )

    response = as_admin.get(file_url.removeprefix("http://testserver"), HTTP_ACCEPT=NDJSON)

    assert response.status_code == 404


def test_cancel_deletes_the_files_from_the_bucket(
    as_admin, organization, gcs_exports, django_capture_on_commit_callbacks
):
    bulk_clinic(organization, 3)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    assert len(bucket_objects(gcs_exports)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = as_admin.delete(status_path(kicked))

    assert cancelled.status_code == 202
    assert ExportJob.objects.get().status == ExportStatus.CANCELLED
    assert bucket_objects(gcs_exports) == {}


def test_expiry_deletes_the_files_from_the_bucket(
    as_admin, organization, gcs_exports, django_capture_on_commit_callbacks
):
    bulk_clinic(organization, 3)
    kick_off(as_admin, django_capture_on_commit_callbacks)
    assert len(bucket_objects(gcs_exports)) == 2
    ExportJob.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert export.export_expire() == 1

    assert ExportJob.objects.get().status == ExportStatus.EXPIRED
    assert bucket_objects(gcs_exports) == {}


def test_with_an_export_bucket_the_files_go_there_and_are_deleted_there(
    as_admin, organization, gcs_exports, settings, django_capture_on_commit_callbacks
):
    settings.GCS_EXPORT_BUCKET = EXPORT_BUCKET
    bulk_clinic(organization, 3)
    kicked = kick_off(as_admin, django_capture_on_commit_callbacks)
    manifest = as_admin.get(status_path(kicked)).json()

    assert bucket_objects(gcs_exports) == {}
    assert len(bucket_objects(gcs_exports, EXPORT_BUCKET)) == 2
    assert len(download(as_admin, manifest["output"][0]["url"])) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert as_admin.delete(status_path(kicked)).status_code == 202
    assert bucket_objects(gcs_exports, EXPORT_BUCKET) == {}
