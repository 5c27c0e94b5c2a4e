"""The Bulk Data export through a real Celery worker on the Redis broker (tests/workers.py):
kick-off, progress, manifest, NDJSON lines that validate, cancel and expiry."""

import re
import threading
from collections import defaultdict
from datetime import timedelta

import pytest
from django.utils import timezone

from fhir import export
from fhir.models import ExportJob, ExportStatus
from fhir.tasks import expire_exports
from tests.fhir.conftest import validate
from tests.fhir.test_export import ASYNC, NDJSON, bulk_clinic, download, status_path
from tests.workers import thread_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def held_runs(monkeypatch: pytest.MonkeyPatch) -> dict[int, threading.Event]:
    """Each run, once its first chunk's progress is stored, waits until the test sets the
    job's event: the test sees the progress of a run that is really under way."""
    releases: dict[int, threading.Event] = defaultdict(threading.Event)
    advance = export._Progress.advance

    def advance_then_wait(progress: export._Progress, rows: int) -> None:
        first = progress.done == 0
        advance(progress, rows)
        if first:
            assert releases[progress.job.pk].wait(timeout=30)

    monkeypatch.setattr(export._Progress, "advance", advance_then_wait)
    return releases


def kick_off(client) -> tuple[str, ExportJob]:
    kicked = client.get("/fhir/R4/Patient/$export", **ASYNC)
    assert kicked.status_code == 202
    return status_path(kicked), ExportJob.objects.latest("pk")


def progress_shown(client, path: str) -> str | None:
    """The status URL's `X-Progress` once it is past 0 %."""
    response = client.get(path)
    assert response.status_code == 202
    progress = response["X-Progress"]
    assert re.fullmatch(r"\d{1,2}%", progress)
    return progress if progress != "0%" else None


def files_of(media_root, job: ExportJob) -> list:
    """Everything in the job's directory, the hidden file a run is still writing included."""
    directory = media_root / "exports" / str(job.organization_id) / job.key.hex
    return list(directory.iterdir()) if directory.exists() else []


def test_a_worker_exports_ten_thousand_patients_then_cancels_and_expires(
    as_admin, organization, fhir_local_storage, held_runs
):
    bulk_clinic(organization, 10_000)

    with thread_worker():
        path, job = kick_off(as_admin)
        # 2,000 of 20,000 rows written.
        assert wait_for(lambda: progress_shown(as_admin, path), what="progress") == "10%"
        held_runs[job.pk].set()

        def finished():
            response = as_admin.get(path)
            return response if response.status_code == 200 else None

        done = wait_for(finished, timeout=120, what="the export")
        manifest = done.json()
        assert manifest["requiresAccessToken"] is True
        assert [(row["type"], row["count"]) for row in manifest["output"]] == [
            ("Patient", 10_000),
            ("DocumentReference", 10_000),
        ]
        for row in manifest["output"]:
            for line in download(as_admin, row["url"]):
                validate(line)
        job.refresh_from_db()
        assert (job.status, job.patient_count, job.progress) == (
            ExportStatus.COMPLETED,
            10_000,
            100,
        )

        # Cancel a second export while it runs: the run stops and its files go.
        cancelled_path, cancelled = kick_off(as_admin)
        wait_for(lambda: progress_shown(as_admin, cancelled_path), what="the second export")
        assert files_of(fhir_local_storage, cancelled)  # its Patient file, half written
        assert as_admin.delete(cancelled_path).status_code == 202
        held_runs[cancelled.pk].set()
        wait_for(lambda: not files_of(fhir_local_storage, cancelled), what="the cancelled files")
        assert as_admin.get(cancelled_path).status_code == 404

        # Expiry: the beat task, run by the worker, deletes the finished export's files.
        ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(1))
        assert as_admin.get(path).status_code == 404
        assert (
            as_admin.get(
                manifest["output"][0]["url"].removeprefix("http://testserver"), HTTP_ACCEPT=NDJSON
            ).status_code
            == 404
        )
        assert files_of(fhir_local_storage, job)
        expire_exports.delay()
        wait_for(
            lambda: ExportJob.objects.get(pk=job.pk).status == ExportStatus.EXPIRED,
            what="the expiry",
        )

    assert not files_of(fhir_local_storage, job)
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.output) == (ExportStatus.CANCELLED, [])
