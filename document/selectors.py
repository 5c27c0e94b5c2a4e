"""Reads of documents. Every query that decides who sees which document starts here."""

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from rest_framework.exceptions import NotFound

from document.models import Document, DocumentType
from document.stats_cache import ALL_ORGANIZATIONS, cached_stats
from patient.models import Patient

# The fields of a document in a patient's summary (`latest`).
SUMMARY_FIELDS = (
    "id",
    "title",
    "filename",
    "document_type",
    "content_type",
    "size_bytes",
    "is_uploaded",
    "uploaded_at",
    "created_at",
)
SUMMARY_LATEST_COUNT = 5
STATS_WINDOW = timedelta(days=30)


def narrow_documents(documents: QuerySet[Document]) -> QuerySet[Document]:
    """Of the documents visible to a user, those the API shows: archived documents and the
    documents of archived patients are invisible (404 on detail, absent from lists)."""
    return documents.filter(is_active=True, patient__is_active=True)


def document_list(*, user: Any) -> QuerySet[Document]:
    """Active documents of active patients that `user` may see (pms/scoping.py)."""
    return narrow_documents(Document.objects.visible_to(user))


def document_get(*, user: Any, pk: Any) -> Document:
    try:
        return document_list(user=user).get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise NotFound("Document not found.") from None


def _aggregate(queryset: QuerySet[Document], **extra: Any) -> dict[str, Any]:
    """Counts by state and type and the stored bytes (and the `extra` aggregates): one query
    grouped by type, a row per type present, summed here. (One row of a dozen filtered
    aggregates costs the same in the database but three times as much to build in the ORM.)"""
    uploaded = Q(is_uploaded=True)
    rows = (
        queryset.order_by()
        .values("document_type")
        .annotate(
            total=Count("id"),
            uploaded=Count("id", filter=uploaded),
            total_bytes=Sum("size_bytes", filter=uploaded),
            **extra,
        )
    )
    by_type = dict.fromkeys(DocumentType.values, 0)
    sums = dict.fromkeys(["total", "uploaded", "total_bytes", *extra], 0)
    row: dict[str, Any]
    for row in rows:  # type: ignore[assignment]  # annotate() with **extra: untyped keys
        if row["document_type"] in by_type:
            by_type[row["document_type"]] = row["total"]
        for key in sums:
            sums[key] += row[key] or 0
    return {
        "total": sums["total"],
        "uploaded": sums["uploaded"],
        "pending": sums["total"] - sums["uploaded"],
        "total_bytes": sums["total_bytes"],
        "by_type": by_type,
        **{key: sums[key] for key in extra},
    }


def document_stats(*, user: Any, patient: Patient | None = None) -> dict[str, Any]:
    """Totals, uploaded/pending, stored bytes, counts by type and the last 30 days.

    A patient's stats are computed each time (an index range of a few rows); an organization's
    come from the cache of `stats_cache`, current with every committed write.
    """
    if patient is not None:
        return _document_stats(user=user, patient=patient)
    scope = user.organization_id if user.organization_id is not None else ALL_ORGANIZATIONS
    return cached_stats(scope, lambda: _document_stats(user=user, patient=None))


def _document_stats(*, user: Any, patient: Patient | None) -> dict[str, Any]:
    queryset = document_list(user=user)
    if patient is not None:
        queryset = queryset.filter(patient=patient)
    since = timezone.now() - STATS_WINDOW
    recent_upload = Q(is_uploaded=True, uploaded_at__gte=since)
    stats = _aggregate(
        queryset,
        recent_created=Count("id", filter=Q(created_at__gte=since)),
        recent_uploaded=Count("id", filter=recent_upload),
        recent_bytes=Sum("size_bytes", filter=recent_upload),
    )
    stats["last_30_days"] = {
        "created": stats.pop("recent_created"),
        "uploaded": stats.pop("recent_uploaded"),
        "uploaded_bytes": stats.pop("recent_bytes"),
    }
    return stats


def document_summary_for_patient(*, patient: Patient) -> dict[str, Any]:
    """The `documents` block of a patient's summary, in two queries.

    The caller has already checked that it may see `patient`.
    """
    queryset = Document.objects.filter(patient=patient, is_active=True)
    summary = _aggregate(queryset)
    summary["latest"] = list(
        queryset.order_by("-created_at", "-id").values(*SUMMARY_FIELDS)[:SUMMARY_LATEST_COUNT]
    )
    return summary
