"""Documents in the Django admin: read-mostly (files arrive through the API's signed uploads),
scoped and on record (pms/admin.py). Labels are edited and documents archived through the same
services as the API; nothing is deleted here (stale pending uploads are purged by
`purge_stale_uploads`). The scan state shows in the list and on each page; "Scan again" is a
platform operator's action (superusers only), for a scan that ended in `error`, say."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from document.models import Document
from document.scanner import ScannerUnavailable
from document.services import document_archive, document_requeue_scan, document_update
from pms.admin import AuditedAdmin

FIELDS = (
    "organization",
    "patient",
    "document_type",
    "title",
    "filename",
    "content_type",
    "size_bytes",
    "object_name",
    "is_uploaded",
    "uploaded_at",
    "checksum",
    "object_generation",
    "scan_status",
    "scanned_at",
    "scan_finding",
    "uploaded_by",
    "is_active",
    "archived_at",
    "created_at",
    "updated_at",
)
EDITABLE_FIELDS = ("title", "document_type")


@admin.register(Document)
class DocumentAdmin(AuditedAdmin):
    audit_resource = "document"
    list_display = [
        "id",
        "title",
        "document_type",
        "content_type",
        "size_bytes",
        "is_uploaded",
        "scan_status",
        "is_active",
        "organization",
        "created_at",
    ]
    list_filter = ["document_type", "is_uploaded", "scan_status", "is_active", "organization"]
    search_fields = ["title", "filename"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = FIELDS
    readonly_fields = tuple(name for name in FIELDS if name not in EDITABLE_FIELDS)
    actions = ["archive", "scan_again"]

    def audit_patient_ids(self, objects: Any) -> list[Any]:
        return [document.patient_id for document in objects]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_scan_permission(self, request: HttpRequest) -> bool:
        # Scanning is the platform's machinery, not a clinic's: only operators re-queue it.
        return bool(request.user.is_superuser)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Django answers an action the user may not run with the list and a message; refuse it
        # outright, as every other page the user may not reach is refused.
        action = request.POST.get("action") if request.method == "POST" else None
        if action and action not in self.get_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def has_change_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_active)

    def has_delete_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        document_update(
            document=obj, data={name: form.cleaned_data[name] for name in form.changed_data}
        )

    @admin.action(description="Archive selected documents", permissions=["change"])
    def archive(self, request: HttpRequest, queryset: Any) -> None:
        archived = [
            document_archive(document=document) for document in queryset.filter(is_active=True)
        ]
        self.audit(
            request,
            "destroy",
            status_code=200,
            patient_ids=self.audit_patient_ids(archived),
            details={"documents": [document.pk for document in archived]},
        )
        self.message_user(request, f"{len(archived)} document(s) archived.", messages.SUCCESS)

    @admin.action(description="Scan selected documents again", permissions=["scan"])
    def scan_again(self, request: HttpRequest, queryset: Any) -> None:
        try:
            queued = [
                document
                for document in queryset.filter(is_uploaded=True)
                if document_requeue_scan(document=document)
            ]
        except ScannerUnavailable:
            self.message_user(request, "The scanner is off (DOCUMENT_SCANNER).", messages.ERROR)
            return
        self.audit(
            request,
            "scan_again",
            status_code=200,
            patient_ids=self.audit_patient_ids(queued),
            details={"documents": [document.pk for document in queued]},
        )
        self.message_user(
            request, f"{len(queued)} document(s) queued for a scan.", messages.SUCCESS
        )
