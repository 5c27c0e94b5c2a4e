"""The Bulk Data export through a real Celery worker on the Redis broker (tests/workers.py)."""

import re

import pytest

from fhir.models import ExportJob, ExportStatus
from tests.fhir.conftest import validate
from tests.fhir.test_export import ASYNC, bulk_clinic, download, status_path
from tests.workers import thread_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_exports_ten_thousand_patients(as_admin, organization, fhir_local_storage):
    bulk_clinic(organization, 10_000)

    with thread_worker():
        kicked = as_admin.get("/fhir/R4/Patient/$export", **ASYNC)
        assert kicked.status_code == 202

        def poll():
            response = as_admin.get(status_path(kicked))
            if response.status_code == 202:
                assert re.fullmatch(r"\d{1,3}%", response["X-Progress"])
                return None
            return response

        done = wait_for(poll, timeout=120, what="the export")

    assert done.status_code == 200, done.content
    manifest = done.json()
    assert [(row["type"], row["count"]) for row in manifest["output"]] == [
        ("Patient", 10_000),
        ("DocumentReference", 10_000),
    ]
    for row in manifest["output"]:
        for line in download(as_admin, row["url"]):
            validate(line)
    job = ExportJob.objects.get()
    assert (job.status, job.patient_count, job.progress) == (ExportStatus.COMPLETED, 10_000, 100)
