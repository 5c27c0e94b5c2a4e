from typing import Any

from document.storage import StorageUnavailable
from fhir.export import STALE_AFTER, export_delete_files, export_expire, export_run
from pms.celery import TRANSIENT_ERRORS, app

# An export of a million patients runs for minutes, not the default two: its own limits.
EXPORT_SOFT_TIME_LIMIT = 4 * 3600
EXPORT_TIME_LIMIT = EXPORT_SOFT_TIME_LIMIT + 300


@app.task(
    bind=True,
    name="fhir.export",
    soft_time_limit=EXPORT_SOFT_TIME_LIMIT,
    time_limit=EXPORT_TIME_LIMIT,
)
def export(self: Any, job_id: int) -> None:
    """Writes a Bulk Data export's files; idempotent. A second delivery of a job that a live
    run holds (the broker's visibility timeout passed while it ran) looks again later, and
    takes the job over if that run's worker has died."""
    if not export_run(job_id=job_id):
        raise self.retry(countdown=STALE_AFTER.total_seconds(), max_retries=None)


@app.task(name="fhir.delete_export_files", autoretry_for=(*TRANSIENT_ERRORS, StorageUnavailable))
def delete_export_files(job_id: int) -> None:
    """A cancelled export's files; idempotent, retried while storage is away."""
    export_delete_files(job_id=job_id)


@app.task(name="fhir.expire_exports", autoretry_for=(*TRANSIENT_ERRORS, StorageUnavailable))
def expire_exports() -> int:
    """Beat's hourly deletion of expired exports' files; idempotent (a job is marked expired
    only once its files are gone, so storage away leaves it for the retry or the next hour)."""
    return export_expire()
