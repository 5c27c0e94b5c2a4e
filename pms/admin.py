"""What every ModelAdmin of the project shares: the scoping rule, platform-only admins, and the
audit trail of admin pages (docs/architecture.md, "The Django admin").

- `ScopedAdmin` shows a clinic admin their own clinic's rows only, through the same
  `visible_to(user)` as the API; a row of another clinic is a 404, and so is one that does not
  exist (Django's admin would redirect with a message that tells the two apart).
- `PlatformAdmin` is for platform operators (superusers) only: organizations, tokens, lockouts,
  social-auth links.
- `AuditedAdmin` records an AuditEvent (source "admin") for every page that shows or changes
  patient data, with the same action names as the API. As in the API, the trail fails closed: a
  page whose event cannot be written answers 503 instead, and a change it made is rolled back.
"""

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from audit.models import Source
from audit.services import AuditUnavailable, audit_record
from pms.celery import app as celery_app
from pms.exceptions import error_response
from pms.models import FailedTask

# The organization is implied for a clinic admin; a column or filter of it would list clinics.
_CLINIC_IMPLIED = "organization"


class ScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin over an organization-owned model (its queryset has `visible_to`)."""

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).visible_to(request.user)  # type: ignore[attr-defined]

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str):  # type: ignore[no-untyped-def]
        # Another clinic's row and a missing one answer alike, as in the API.
        raise Http404("Not found.")

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        # Django checks the permission before it looks the row up: look it up first, so that
        # another clinic's row is a 404 here too.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("Not found.")
        return super().delete_view(request, object_id, extra_context)

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = super().get_list_display(request)
        if request.user.is_superuser:
            return columns
        return [column for column in columns if column != _CLINIC_IMPLIED]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [name for name in filters if name != _CLINIC_IMPLIED]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Choices of a related clinic-owned model are scoped too (a list of another clinic's
        # patients or users would leak them).
        related = db_field.remote_field.model._default_manager
        if "queryset" not in kwargs and hasattr(related, "visible_to"):
            kwargs["queryset"] = related.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PlatformAdmin(admin.ModelAdmin):
    """Superusers only: a clinic admin neither sees the model in the index nor reaches a page."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)


def replace_registration(model: Any, admin_class: type[admin.ModelAdmin]) -> None:
    """Swaps a third-party app's ModelAdmin for ours."""
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


def _status_of(request: HttpRequest, response: HttpResponse) -> int:
    # A form posted back with errors is re-rendered with 200: it changed nothing.
    if request.method == "POST" and response.status_code == 200:
        return 400
    return response.status_code


_REFUSALS = "_audit_refusals"
_SHOWN = "_audit_shown_object"


def _fails_closed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Runs an admin page in one transaction with its event: if the event cannot be written,
    whatever the page changed is rolled back and it answers 503. Events of refusals are written
    after the transaction, which a refusal (an exception) rolls back."""

    @functools.wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusals: list[dict[str, Any]] = []
        setattr(request, _REFUSALS, refusals)
        try:
            try:
                with transaction.atomic():
                    return view(request, *args, **kwargs)
            finally:
                for event in refusals:
                    audit_record(**event)
        except AuditUnavailable as error:
            return error_response(error.status_code, error.default_code, str(error.detail))

    return page


class AuditedAdmin(ScopedAdmin):
    """Records the patient data each admin page showed or changed.

    `audit_resource` names the resource as the API does ("patient", "document", "audit");
    `audit_patient_ids(objects)` says which patients the rows concern.
    """

    audit_resource: str = ""

    def get_urls(self) -> list[Any]:
        patterns = super().get_urls()
        for pattern in patterns:
            if getattr(pattern, "name", None):
                pattern.callback = _fails_closed(pattern.callback)
        return patterns

    def audit_patient_ids(self, objects: Iterable[Any]) -> list[Any]:
        return []

    def audit(
        self,
        request: HttpRequest,
        action: str,
        *,
        status_code: int,
        resource_id: Any = "",
        patient_ids: Iterable[Any] = (),
        details: dict[str, Any] | None = None,
        resource: str | None = None,
    ) -> None:
        resource = resource or self.audit_resource
        params = sorted(request.GET.keys())
        event = {
            "request": request,
            "action": f"{resource}.{action}",
            "resource_type": resource,
            "status_code": status_code,
            "resource_id": resource_id,
            "patient_ids": patient_ids,
            "details": {**({"params": params} if params else {}), **(details or {})},
            "source": Source.ADMIN,
        }
        refusals = getattr(request, _REFUSALS, None)
        if status_code >= 400 and refusals is not None:
            refusals.append(event)  # written once the page's transaction is over
            return
        # A page that shows or changes patient data is not shown unrecorded.
        audit_record(**event, fail_closed=True)

    @contextmanager
    def audit_refusal(
        self, request: HttpRequest, action: str, object_id: Any = "", resource: str | None = None
    ) -> Iterator[None]:
        """Records a page refused with 404 or 403, then lets the refusal through."""
        try:
            yield
        except (Http404, PermissionDenied) as refusal:
            status_code = 404 if isinstance(refusal, Http404) else 403
            self.audit(
                request, action, status_code=status_code, resource_id=object_id, resource=resource
            )
            raise

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        # Records of care are never deleted here: every model audited here refuses it.
        with self.audit_refusal(request, "destroy", object_id):
            return super().delete_view(request, object_id, extra_context)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # Kept for the page's event: the change view's own lookup is the row it showed.
        obj = super().get_object(request, object_id, from_field)
        setattr(request, _SHOWN, obj)
        return obj

    def visible_object(self, request: HttpRequest, object_id: Any) -> Any:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("Not found.")
        return obj

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        with self.audit_refusal(request, "history", object_id):
            # django-simple-history would fall back to the history of a row it cannot see.
            obj = self.visible_object(request, object_id)
            response = super().history_view(request, object_id, extra_context)
        self.audit(
            request,
            "history",
            status_code=response.status_code,
            resource_id=object_id,
            patient_ids=self.audit_patient_ids([obj]),
        )
        return response

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        # A POST runs an action (each records its own event) or a list edit.
        if request.method == "GET":
            shown: list[Any] = []
            if isinstance(response, TemplateResponse) and response.context_data:
                changelist = response.context_data.get("cl")
                shown = list(changelist.result_list) if changelist is not None else []
            self.audit(
                request,
                "search" if request.GET.get("q") else "list",
                status_code=response.status_code,
                patient_ids=self.audit_patient_ids(shown),
                details={"count": len(shown)},
            )
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        action = "partial_update" if request.method == "POST" else "retrieve"
        with self.audit_refusal(request, action, object_id):
            response = super().change_view(request, object_id, form_url, extra_context)
        obj = getattr(request, _SHOWN, None)
        self.audit(
            request,
            action,
            status_code=_status_of(request, response),
            resource_id=object_id,
            patient_ids=self.audit_patient_ids([obj] if obj is not None else []),
        )
        return response

    def audit_refused_form_patients(self, form: Any) -> list[Any]:
        """The patients a refused add form named (e.g. the duplicate check's candidates)."""
        return []

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        response = super().add_view(request, form_url, extra_context)
        if request.method == "POST":
            created = getattr(request, "_audit_created", None)
            if created is not None:
                patient_ids = self.audit_patient_ids([created])
            elif isinstance(response, TemplateResponse) and response.context_data:
                adminform = response.context_data.get("adminform")
                patient_ids = self.audit_refused_form_patients(getattr(adminform, "form", None))
            else:
                patient_ids = []
            self.audit(
                request,
                "create",
                status_code=201 if created is not None else _status_of(request, response),
                resource_id=getattr(created, "pk", ""),
                patient_ids=patient_ids,
                details=getattr(request, "_audit_details", None),
            )
        return response

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            request._audit_created = obj  # type: ignore[attr-defined]


@admin.register(FailedTask)
class FailedTaskAdmin(PlatformAdmin):
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
