from datetime import timedelta

from django.conf import settings

from document.services import document_purge_stale, document_scan
from document.storage import StorageUnavailable
from pms.celery import TRANSIENT_ERRORS, app


@app.task(
    name="document.purge_stale_uploads", autoretry_for=(*TRANSIENT_ERRORS, StorageUnavailable)
)
def purge_stale_uploads() -> int:
    """Beat's hourly `purge_stale_uploads` with its default age; idempotent (a second run finds
    nothing left to delete)."""
    return document_purge_stale(older_than=timedelta(hours=settings.DOCUMENT_PENDING_MAX_AGE_HOURS))


@app.task(name="document.scan", autoretry_for=(*TRANSIENT_ERRORS, StorageUnavailable))
def scan_document(document_id: int) -> str:
    """Malware-scan one confirmed document (`document_scan`); clamd or storage away is retried
    with the base task's backoff, the document showing `error` meanwhile. After the last retry
    it stays `error` (and a failed-task record), and a platform admin can scan it again."""
    return document_scan(document_id=document_id)
