from django.contrib import admin
from django.http import HttpRequest

from document.models import Document
from pms.admin import OrganizationScopedAdminMixin

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
    "uploaded_by",
    "is_active",
    "archived_at",
    "created_at",
    "updated_at",
)
EDITABLE_FIELDS = ("title", "document_type")


@admin.register(Document)
class DocumentAdmin(OrganizationScopedAdminMixin, admin.ModelAdmin):
    """Read-mostly: files arrive through the API's signed uploads; only labels are editable."""

    list_display = [
        "id",
        "title",
        "document_type",
        "content_type",
        "size_bytes",
        "is_uploaded",
        "is_active",
        "organization",
        "created_at",
    ]
    list_filter = ["document_type", "is_uploaded", "is_active", "organization"]
    search_fields = ["title", "filename"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = FIELDS
    readonly_fields = tuple(name for name in FIELDS if name not in EDITABLE_FIELDS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        # Records of care are archived through the API; stale pending ones are purged by
        # the purge_stale_uploads command.
        return False
