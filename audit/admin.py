from typing import Any

from django.contrib import admin

from audit.models import AuditEvent
from pms.admin import AuditedAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(AuditedAdmin):
    """Read-only: the trail is append-only. Reading it is itself on record, as in the API."""

    audit_resource = "audit"
    list_display = [
        "occurred_at",
        "actor_username",
        "organization",
        "source",
        "action",
        "patient_ids",
        "outcome",
        "status_code",
        "ip_address",
    ]
    list_filter = ["outcome", "source", "resource_type", "organization", "action"]
    search_fields = ["actor_username", "request_id", "=resource_id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["organization"]
    show_full_result_count = False

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
