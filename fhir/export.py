"""Bulk Data export (the HL7 Bulk Data Access IG v2; docs/fhir.md).

A job's rows are read in keyset-paginated chunks (`pk > last ORDER BY pk LIMIT n`) and written
line by line to one NDJSON file per type, so memory stays constant whatever the clinic's size.
Files are written through the configured storage backend (`document.storage.get_export_storage()`:
the bucket, or `GCS_EXPORT_BUCKET`, with `gcs`; MEDIA_ROOT with `local`), streamed, under their
own prefix `exports/` (no document is named there, so no document route, scan or quarantine
reaches them). They are served only to the requester by an authenticated endpoint, streamed
from storage (never a signed URL), and deleted on cancel and on expiry.

`export_run` runs as the Celery task `fhir.export` (fhir/tasks.py), enqueued when the kick-off
commits. A run claims the job with a key of its own and beats a heartbeat with every chunk; it
stops at the next chunk when the job is cancelled or another run has taken it over. A delivery
that finds the job held by a live run leaves it (the task looks again later); one that finds the
heartbeat older than `STALE_AFTER` (the worker died) starts the job over. Files are replaced
whole, so a restarted job never mixes two runs' rows.
"""

import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from document.selectors import document_list
from document.storage import Storage, get_export_storage
from fhir.mappers import document_reference_resource, patient_resource
from fhir.models import ExportJob, ExportStatus
from fhir.search import patient_rows
from patient.models import Patient

logger = logging.getLogger("pms.fhir")

EXPORT_TYPES = ("Patient", "DocumentReference")
# Rows per keyset page: large enough that round trips do not dominate, small enough that a
# page of mapped resources is a few megabytes.
CHUNK_ROWS = 2000
# A chunk takes seconds; a run that wrote none for this long has lost its worker.
STALE_AFTER = timedelta(minutes=10)


class ExportStopped(Exception):
    """The job was cancelled, or another run took it over."""


def _object_name(job: ExportJob, resource_type: str) -> str:
    return f"exports/{job.organization_id or 'all'}/{job.key.hex}/{resource_type}"


def export_kick_off(
    *,
    actor: Any,
    request_url: str,
    base_url: str,
    types: list[str],
    since: datetime | None,
    group_organization_id: int | None = None,
) -> ExportJob:
    job = ExportJob.objects.create(
        organization_id=actor.organization_id,
        requested_by=actor,
        request_url=request_url,
        base_url=base_url,
        group_organization_id=group_organization_id,
        types=types,
        since=since,
    )
    # Imported here: the task module imports this one.
    from fhir.tasks import export

    export.delay_on_commit(job.pk)
    return job


def _patients(job: ExportJob) -> QuerySet[Patient]:
    patients = Patient.objects.visible_to(job.requested_by).filter(is_active=True)
    if job.group_organization_id is not None:
        patients = patients.filter(organization_id=job.group_organization_id)
    return patients


def _rows(job: ExportJob, resource_type: str) -> QuerySet[Any]:
    rows: QuerySet[Any]
    if resource_type == "Patient":
        rows = patient_rows(_patients(job))
    else:
        rows = document_list(user=job.requested_by)
        if job.group_organization_id is not None:
            rows = rows.filter(organization_id=job.group_organization_id)
    if job.since is not None:
        rows = rows.filter(updated_at__gt=job.since)
    return rows


def _mapper(job: ExportJob, resource_type: str) -> Callable[[Any], dict[str, Any]]:
    if resource_type == "Patient":
        return lambda patient: patient_resource(
            patient, organization_slug=patient.organization_slug
        )
    return lambda document: document_reference_resource(document, base_url=job.base_url)


def _keyset_pages(rows: QuerySet[Any]) -> Iterator[list[Any]]:
    last_pk = 0
    while True:
        page = list(rows.filter(pk__gt=last_pk).order_by("pk")[:CHUNK_ROWS])
        if not page:
            return
        yield page
        last_pk = page[-1].pk


def _held(job: ExportJob, run_key: uuid.UUID) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(pk=job.pk, status=ExportStatus.IN_PROGRESS, run_key=run_key)


class _Progress:
    """Counts written rows; once per chunk stores the percentage and the heartbeat, and stops
    the run when it no longer holds the job."""

    def __init__(self, job: ExportJob, run_key: uuid.UUID, total: int) -> None:
        self.job, self.run_key, self.total, self.done = job, run_key, max(total, 1), 0

    def advance(self, rows: int) -> None:
        self.done += rows
        percent = min(99, self.done * 100 // self.total)
        if not _held(self.job, self.run_key).update(progress=percent, heartbeat_at=timezone.now()):
            raise ExportStopped


def _ndjson(
    job: ExportJob, resource_type: str, progress: _Progress, counter: list[int]
) -> Iterator[bytes]:
    mapper = _mapper(job, resource_type)
    for page in _keyset_pages(_rows(job, resource_type)):
        yield b"".join(
            json.dumps(mapper(row), separators=(",", ":")).encode() + b"\n" for row in page
        )
        counter[0] += len(page)
        progress.advance(len(page))


def export_run(*, job_id: int) -> bool:
    """Writes the job's files. False when a live run holds the job (look again later); a job
    done, failed or cancelled is left as it is."""
    now, run_key = timezone.now(), uuid.uuid4()
    claimable = Q(status=ExportStatus.ACCEPTED) | Q(
        status=ExportStatus.IN_PROGRESS, heartbeat_at__lt=now - STALE_AFTER
    )
    claimed = ExportJob.objects.filter(claimable, pk=job_id).update(
        status=ExportStatus.IN_PROGRESS,
        run_key=run_key,
        heartbeat_at=now,
        progress=0,
        transaction_time=now,
    )
    if not claimed:
        return not ExportJob.objects.filter(pk=job_id, status=ExportStatus.IN_PROGRESS).exists()
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    _write(job, run_key)
    return True


def _write(job: ExportJob, run_key: uuid.UUID) -> None:
    storage = get_export_storage()
    totals = {resource_type: _rows(job, resource_type).count() for resource_type in job.types}
    progress = _Progress(job, run_key, sum(totals.values()))
    output = []
    try:
        for resource_type in job.types:
            counter = [0]
            object_name = _object_name(job, resource_type)
            stored = storage.write(
                object_name,
                _ndjson(job, resource_type, progress, counter),
                content_type="application/fhir+ndjson",
                max_bytes=sys.maxsize,
                min_bytes=0,  # a type with no rows is an empty file
            )
            output.append(
                {
                    "type": resource_type,
                    "object_name": object_name,
                    # GCS: the file is served from the generation this run wrote, or not at all.
                    "generation": stored.generation,
                    "count": counter[0],
                }
            )
    except ExportStopped:
        _clean_up_after_stop(job, storage)
        return
    except Exception:
        logger.exception("export failed", extra={"export_id": job.pk})
        if _held(job, run_key).update(status=ExportStatus.FAILED):
            _delete_files(job, storage)
        return
    now = timezone.now()
    counts = {entry["type"]: entry["count"] for entry in output}
    finished = _held(job, run_key).update(
        status=ExportStatus.COMPLETED,
        progress=100,
        output=output,
        patient_count=counts.get("Patient"),
        completed_at=now,
        expires_at=now + timedelta(hours=settings.FHIR_EXPORT_EXPIRY_HOURS),
    )
    if not finished:  # cancelled, or taken over, while the last file was written
        _clean_up_after_stop(job, storage)


def _clean_up_after_stop(job: ExportJob, storage: Storage) -> None:
    # A run that was taken over leaves the files to the run that holds the job now.
    if ExportJob.objects.filter(pk=job.pk, status=ExportStatus.CANCELLED).exists():
        _delete_files(job, storage)


def _delete_files(job: ExportJob, storage: Storage) -> None:
    for resource_type in EXPORT_TYPES:
        storage.delete(_object_name(job, resource_type))


def export_cancel(*, job: ExportJob) -> None:
    """Stops a running job (it checks between chunks) and has a task delete what it wrote
    (retried while storage is away)."""
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.CANCELLED)
    from fhir.tasks import delete_export_files

    delete_export_files.delay_on_commit(job.pk)


def export_delete_files(*, job_id: int) -> None:
    """Deletes a cancelled job's files; idempotent."""
    job = ExportJob.objects.filter(pk=job_id, status=ExportStatus.CANCELLED).first()
    if job is not None:
        _delete_files(job, get_export_storage())


def export_expire(*, now: datetime | None = None) -> int:
    """Deletes the files of every finished job past its expiry; for a periodic task."""
    now = now or timezone.now()
    storage = get_export_storage()
    expired = ExportJob.objects.filter(status=ExportStatus.COMPLETED, expires_at__lte=now)
    count = 0
    for job in expired.iterator():
        _delete_files(job, storage)
        count += ExportJob.objects.filter(pk=job.pk, status=ExportStatus.COMPLETED).update(
            status=ExportStatus.EXPIRED
        )
    return count


def export_open_file(*, job: ExportJob, index: int) -> tuple[IO[bytes], dict[str, Any]] | None:
    """The stream of the job's `index`th output file, or None."""
    if not 0 <= index < len(job.output):
        return None
    entry = job.output[index]
    handle = get_export_storage().open(entry["object_name"], generation=entry.get("generation"))
    return (handle, entry) if handle is not None else None
