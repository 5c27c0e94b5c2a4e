from typing import Any

from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.filters import AuditEventFilter
from audit.mixins import AuditedViewMixin
from audit.models import AuditEvent
from audit.selectors import narrow_audit_events
from audit.serializers import AuditEventSerializer
from pms.permissions import IsOrgAdmin
from pms.scoping import ScopedViewMixin


class AuditEventViewSet(
    AuditedViewMixin, ScopedViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """The organization's audit trail, newest first. Organization administrators only.

    "Who looked at patient 42 last month": `?patient=42&occurred_after=…&occurred_before=…`
    (list and search pages that showed the patient are included).
    """

    permission_classes = [IsOrgAdmin]
    queryset = AuditEvent.objects.none()  # for the schema; requests use the scoped selector
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    audit_resource = "audit"
    scoped_model = AuditEvent
    patient_data = True

    def narrow_queryset(self, queryset):  # type: ignore[no-untyped-def]
        return narrow_audit_events(queryset)


class UnknownPathView(AuditedViewMixin, APIView):
    """Any unknown path under a patient-data prefix: a 404 (401 when anonymous), on record."""

    schema = None  # not an operation of the API
    patient_data = True

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.audit_resource = kwargs["resource"]
        self.audit_action = "unknown_path"
        super().initial(request, *args, **kwargs)

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("Not found.")

    post = put = patch = delete = get
