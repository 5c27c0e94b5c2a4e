"""Admin helpers shared by the apps."""

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from pms.celery import app as celery_app
from pms.models import FailedTask


class OrganizationScopedAdminMixin:
    """Admin users who belong to a clinic administer that clinic's records only; superusers
    without an organization see every clinic (the same rule as the API's selectors)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        organization_id = getattr(request.user, "organization_id", None)
        if organization_id is None:
            return queryset
        return queryset.filter(organization_id=organization_id)


@admin.register(FailedTask)
class FailedTaskAdmin(admin.ModelAdmin):
    """Background tasks that gave up, for platform operators (superusers) only.

    A record is read-only. "Run again" enqueues the task with its recorded arguments (tasks are
    idempotent) and removes the record; deleting a record marks it as dealt with.
    """

    list_display = ["failed_at", "task_name", "error_type", "retries", "args", "request_id"]
    list_filter = ["task_name", "failed_at"]
    search_fields = ["task_name", "task_id", "request_id"]
    date_hierarchy = "failed_at"
    fields = readonly_fields = (
        "task_name",
        "task_id",
        "args",
        "kwargs",
        "retries",
        "error_type",
        "error_message",
        "request_id",
        "failed_at",
    )
    actions = ["run_again"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: FailedTask | None = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: FailedTask | None = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: FailedTask | None = None) -> bool:
        return False

    @admin.action(description="Run the selected tasks again", permissions=["delete"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[FailedTask]) -> None:
        failed = list(queryset)
        for task in failed:
            again = celery_app.signature(task.task_name, args=task.args, kwargs=task.kwargs)
            transaction.on_commit(again.apply_async)
        queryset.filter(pk__in=[task.pk for task in failed]).delete()
        self.message_user(request, f"{len(failed)} task(s) enqueued again.", messages.SUCCESS)
