"""Writes of documents: create and sign uploads, confirm against storage, scan, update, archive,
purge."""

import logging
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import IO, Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions, status

from audit.services import audit_record
from document.content import content_matches
from document.models import DOWNLOADABLE_SCAN_STATUSES, Document, ScanStatus
from document.scanner import ScannerUnavailable, scan, scanner_enabled
from document.storage import (
    DownloadGrant,
    ObjectIncomplete,
    ObjectTooLarge,
    SignedRequest,
    Storage,
    StorageUnavailable,
    StoredObject,
    UploadGrant,
    get_local_storage,
    get_storage,
)
from patient.models import Patient
from pms.context import current_request_id
from pms.exceptions import ApplicationError, Conflict, PayloadTooLarge

logger = logging.getLogger(__name__)

FALLBACK_FILENAME = "document"
_FILENAME_MAX = 255
_EXTENSION_MAX = 16
_WHITESPACE = re.compile(r"\s+")


class UploadMissing(Conflict):
    default_code = "upload_missing"
    default_detail = "The file is not in storage yet: upload the file first, then confirm."


class AlreadyUploaded(Conflict):
    default_code = "already_uploaded"
    default_detail = "This document's file has already been uploaded and confirmed."


class NotUploaded(Conflict):
    default_code = "not_uploaded"
    default_detail = "This document's file has not been uploaded yet."


class UploadClosed(Conflict):
    default_code = "upload_closed"
    default_detail = "This upload link no longer accepts a file; request a new one."


class DocumentArchived(ApplicationError):
    status_code = status.HTTP_410_GONE
    default_code = "document_archived"
    default_detail = "The document or its patient has been archived; this link no longer works."


class ContentMismatch(ApplicationError):
    default_code = "content_mismatch"
    default_detail = "The uploaded file's content is not of the declared type; it was removed."


class ScanPending(Conflict):
    default_code = "scan_pending"
    default_detail = "The file has not passed its malware scan yet; try again shortly."


class DocumentQuarantined(Conflict):
    default_code = "document_quarantined"
    default_detail = "The malware scan found a threat in this file; it is quarantined."


class IncompleteUpload(ApplicationError):
    default_code = "incomplete_upload"
    default_detail = "The request body ended before Content-Length bytes were received."


def sanitize_filename(raw: str) -> str:
    """A display name: no directories, no control or format characters, at most 255 chars."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    # Category C = control, format (bidi overrides), surrogates, private use, unassigned.
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C"))
    name = _WHITESPACE.sub(" ", name).strip(" .")
    if not name:
        return FALLBACK_FILENAME
    if len(name) > _FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= _EXTENSION_MAX:
            name = stem[: _FILENAME_MAX - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:_FILENAME_MAX]
    return name


def new_object_name(*, organization_id: int) -> str:
    """Random, and carries nothing about the patient or the file."""
    return f"documents/{organization_id}/{uuid.uuid4().hex}"


@transaction.atomic
def document_create(*, actor: Any, patient: Patient, data: dict[str, Any]) -> Document:
    """A pending document for `patient` (the caller has already checked it may see them)."""
    filename = sanitize_filename(data["filename"])
    title = (data.get("title") or "").strip() or filename
    return Document.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        document_type=data["document_type"],
        title=title,
        filename=filename,
        content_type=data["content_type"],
        size_bytes=data["size_bytes"],
        object_name=new_object_name(organization_id=patient.organization_id),
        uploaded_by=actor,
    )


def document_sign_upload(*, document: Document) -> SignedRequest:
    """A signed PUT for a pending document's object."""
    if document.is_uploaded:
        raise AlreadyUploaded
    return get_storage().sign_upload(
        object_name=document.object_name,
        content_type=document.content_type,
        size_bytes=document.size_bytes,
    )


def document_create_with_upload(
    *, actor: Any, patient: Patient, data: dict[str, Any]
) -> tuple[Document, SignedRequest]:
    document = document_create(actor=actor, patient=patient, data=data)
    return document, document_sign_upload(document=document)


def _rejections(document: Document, stored: StoredObject) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if stored.size_bytes > document.size_bytes:
        problems["size_bytes"] = ["The uploaded file is larger than the declared size."]
    elif stored.size_bytes < 1:
        problems["size_bytes"] = ["The uploaded file is empty."]
    if stored.content_type.strip().lower() != document.content_type:
        problems["content_type"] = ["The uploaded file's type differs from the declared type."]
    return problems


def _content_matches(storage: Storage, document: Document, stored: StoredObject) -> bool:
    stream = storage.open(document.object_name, generation=stored.generation)
    if stream is None:
        raise UploadMissing
    with stream:
        return content_matches(document.content_type, stream, stored.size_bytes)


@transaction.atomic
def document_confirm(*, document: Document) -> Document:
    """Mark the document uploaded from what storage holds, not from what the client says, and
    queue its malware scan (or mark it `skipped` with the scanner off).

    Idempotent: a confirmed document is returned unchanged. The row is locked so two
    concurrent confirms end in one state, and so that a local PUT, which takes the same lock
    to move its bytes into place, cannot replace the object while it is checked here.
    """
    locked = Document.objects.select_for_update().get(pk=document.pk)
    if locked.is_uploaded:
        return locked
    storage = get_storage()
    stored = storage.stat(locked.object_name)
    if stored is None:
        raise UploadMissing
    problems = _rejections(locked, stored)
    mismatch = not problems and not _content_matches(storage, locked, stored)
    if problems or mismatch:
        # Removed now, not on commit: the object is unusable whatever happens to this row.
        storage.delete(locked.object_name)
        logger.info(
            "document %s: upload rejected (%s)",
            locked.pk,
            ", ".join(problems) if problems else "content_mismatch",
        )
        if mismatch:
            raise ContentMismatch
        raise exceptions.ValidationError(problems)
    scanning = scanner_enabled()
    locked.size_bytes = stored.size_bytes
    locked.checksum = stored.checksum
    locked.object_generation = stored.generation
    locked.is_uploaded = True
    locked.uploaded_at = timezone.now()
    locked.scan_status = ScanStatus.PENDING if scanning else ScanStatus.SKIPPED
    locked.save(
        update_fields=[
            "size_bytes",
            "checksum",
            "object_generation",
            "is_uploaded",
            "uploaded_at",
            "scan_status",
            "updated_at",
        ]
    )
    if scanning:
        _enqueue_scan(locked)
    return locked


def _enqueue_scan(document: Document) -> None:
    from document.tasks import scan_document  # the tasks module imports this one

    scan_document.delay_on_commit(document.pk)


@transaction.atomic
def document_requeue_scan(*, document: Document) -> bool:
    """Scan a confirmed document again (a platform admin's "Scan again"); it is not
    downloadable until the scan ends. An infected document stays in quarantine: False."""
    if not scanner_enabled():
        raise ScannerUnavailable("DOCUMENT_SCANNER is off")
    queued = (
        Document.objects.filter(pk=document.pk, is_uploaded=True)
        .exclude(scan_status=ScanStatus.INFECTED)
        .update(scan_status=ScanStatus.PENDING, updated_at=timezone.now())
    )
    if queued:
        _enqueue_scan(document)
    return bool(queued)


def _set_scan_result(document: Document, scan_status: str, finding: str = "") -> bool:
    """Record a verdict on a document still waiting for one; False when another run of the
    same scan got there first (tasks run at least once)."""
    return bool(
        Document.objects.filter(
            pk=document.pk, scan_status__in=(ScanStatus.PENDING, ScanStatus.ERROR)
        ).update(
            scan_status=scan_status,
            scan_finding=finding,
            scanned_at=timezone.now(),
            updated_at=timezone.now(),
        )
    )


def _task_request(action: str) -> HttpRequest:
    """What the audit trail records of a background task: no user, address or agent."""
    request = HttpRequest()
    request.method = "TASK"
    request.path = f"/tasks/{action}"
    request.request_id = current_request_id()  # type: ignore[attr-defined]
    return request


def document_scan(*, document_id: int) -> str:
    """Scan one confirmed document's stored object (the confirmed generation) with clamd.

    Clean: `clean`. Infected: `infected` and audited in one transaction, then the object moves
    to quarantine. No verdict: `error`, and `ScannerUnavailable` (or `StorageUnavailable`) is
    raised for the task to retry. Idempotent; returns the document's scan status.
    """
    document = Document.objects.filter(pk=document_id, is_uploaded=True).first()
    if document is None:
        return "missing"
    storage = get_storage()
    if document.scan_status == ScanStatus.INFECTED:
        # A run that recorded the verdict but did not finish the move.
        storage.quarantine(document.object_name, generation=document.object_generation)
        return document.scan_status
    if document.scan_status not in (ScanStatus.PENDING, ScanStatus.ERROR):
        return document.scan_status
    try:
        stream = storage.open(document.object_name, generation=document.object_generation)
        if stream is None:
            raise StorageUnavailable
        with stream:
            verdict = scan(stream)
    except (ScannerUnavailable, StorageUnavailable):
        _set_scan_result(document, ScanStatus.ERROR)
        raise
    if not verdict.infected:
        _set_scan_result(document, ScanStatus.CLEAN)
        return ScanStatus.CLEAN
    with transaction.atomic():
        if _set_scan_result(document, ScanStatus.INFECTED, verdict.finding):
            audit_record(
                request=_task_request("document.quarantine"),
                action="document.quarantine",
                resource_type="document",
                resource_id=document.pk,
                patient_ids=[document.patient_id],
                organization_id=document.organization_id,
                status_code=status.HTTP_200_OK,
                details={"finding": verdict.finding},
                fail_closed=True,
            )
    storage.quarantine(document.object_name, generation=document.object_generation)
    logger.warning("document %s: quarantined (%s)", document.pk, verdict.finding)
    return ScanStatus.INFECTED


def _require_downloadable(scan_status: str) -> None:
    if scan_status == ScanStatus.INFECTED:
        raise DocumentQuarantined
    if scan_status not in DOWNLOADABLE_SCAN_STATUSES:
        raise ScanPending


def document_sign_download(*, document: Document) -> SignedRequest:
    if not document.is_uploaded:
        raise NotUploaded
    _require_downloadable(document.scan_status)
    return get_storage().sign_download(
        object_name=document.object_name,
        filename=document.filename,
        content_type=document.content_type,
        generation=document.object_generation,
    )


@transaction.atomic
def document_update(*, document: Document, data: dict[str, Any]) -> Document:
    """Metadata only: title, type, display filename."""
    fields = []
    if "filename" in data:
        document.filename = sanitize_filename(data["filename"])
        fields.append("filename")
    if "title" in data:
        document.title = data["title"].strip() or document.filename
        fields.append("title")
    if "document_type" in data:
        document.document_type = data["document_type"]
        fields.append("document_type")
    if fields:
        document.save(update_fields=[*fields, "updated_at"])
    return document


@transaction.atomic
def document_archive(*, document: Document) -> Document:
    """Soft delete: the record leaves every list; the stored object is kept."""
    document.is_active = False
    document.archived_at = timezone.now()
    document.save(update_fields=["is_active", "archived_at", "updated_at"])
    return document


def _require_live(object_name: str) -> dict[str, Any]:
    """Refuses a signed URL whose document or patient was archived since it was signed
    (`DocumentArchived`): checked in the database when the URL is used. Returns the document's
    `is_uploaded` and `scan_status`."""
    document = (
        Document.objects.filter(object_name=object_name)
        .values("is_active", "is_uploaded", "scan_status", "patient__is_active")
        .first()
    )
    if document is None or not (document["is_active"] and document["patient__is_active"]):
        raise DocumentArchived
    return dict(document)


def _still_pending(object_name: str) -> Callable[[], AbstractContextManager[None]]:
    """The guard of a local PUT's move into place: the document must still be pending then.

    One UPDATE both checks and locks the row (PostgreSQL's row lock, SQLite's write lock) until
    the move is done, and confirm locks the same row: a PUT whose body was still streaming
    when confirm ran is refused instead of replacing the confirmed file.
    """

    @contextmanager
    def guard() -> Iterator[None]:
        with transaction.atomic():
            claimed = Document.objects.filter(
                object_name=object_name,
                is_uploaded=False,
                is_active=True,
                patient__is_active=True,
            ).update(updated_at=timezone.now())
            if not claimed:
                _require_live(object_name)
                raise UploadClosed
            yield

    return guard


def document_store_local_upload(
    *, grant: UploadGrant, chunks: Iterable[bytes], length: int
) -> StoredObject:
    """The local backend's PUT: store the body for a still-pending document."""
    if length > grant.max_bytes:
        raise PayloadTooLarge(f"The file is larger than the {grant.max_bytes} bytes signed for.")
    if length < 1:
        raise exceptions.ValidationError({"file": ["The request body is empty."]})
    if _require_live(grant.object_name)["is_uploaded"]:
        raise UploadClosed
    try:
        return get_local_storage().write(
            grant.object_name,
            chunks,
            content_type=grant.content_type,
            max_bytes=grant.max_bytes,
            min_bytes=length,
            guard=_still_pending(grant.object_name),
        )
    except ObjectTooLarge:
        raise PayloadTooLarge(
            f"The file is larger than the {grant.max_bytes} bytes signed for."
        ) from None
    except ObjectIncomplete:
        raise IncompleteUpload from None


def document_open_local_download(*, grant: DownloadGrant) -> IO[bytes]:
    """The local backend's GET: the stored bytes of a document that is still live and not
    waiting for (or failed by) a scan since the URL was signed."""
    _require_downloadable(_require_live(grant.object_name)["scan_status"])
    handle = get_local_storage().open(grant.object_name)
    if handle is None:
        raise exceptions.NotFound("The file is not in storage.")
    return handle


def document_purge_stale(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Delete pending documents created before `older_than` ago, and any object they left.

    Never-confirmed uploads are not records of care, so they are removed for good. Their objects
    go first, while the rows are locked: when storage fails, no row is deleted, and the next run
    (the beat task retries a storage outage) finds the same documents again. An object already
    gone is no error, and a stale document's object is garbage whether or not its row goes.
    """
    cutoff = timezone.now() - older_than
    with transaction.atomic():
        stale = Document.objects.select_for_update().filter(
            is_uploaded=False, created_at__lt=cutoff
        )
        object_names = list(stale.values_list("object_name", flat=True))
        if dry_run or not object_names:
            return len(object_names)
        storage = get_storage()
        for object_name in object_names:
            storage.delete(object_name)
        Document.objects.filter(object_name__in=object_names, is_uploaded=False).delete()
    return len(object_names)
