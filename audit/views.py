from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import mixins, viewsets

from audit.filters import AuditEventFilter
from audit.mixins import AuditedViewMixin
from audit.models import AuditEvent
from audit.selectors import audit_event_list
from audit.serializers import AuditEventSerializer
from audit.services import audit_record
from pms.exceptions import api_not_found
from pms.permissions import IsOrgAdmin


class AuditEventViewSet(AuditedViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The organization's audit trail, newest first. Organization administrators only.

    "Who looked at patient 42 last month": `?patient=42&occurred_after=…&occurred_before=…`
    (list and search pages that showed the patient are included).
    """

    permission_classes = [IsOrgAdmin]
    queryset = AuditEvent.objects.none()  # for the schema; requests use the scoped selector
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    audit_resource = "audit"

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return audit_event_list(user=self.request.user)


@csrf_exempt  # an unsafe method on an unknown path is a 404, not the CSRF failure page
def audited_not_found(request: HttpRequest, resource: str) -> JsonResponse:
    """An unknown path under a patient-data prefix: still a 404, and on record."""
    response = api_not_found(request)
    audit_record(
        request=request,
        action=f"{resource}.unknown_path",
        resource_type=resource,
        status_code=response.status_code,
    )
    return response
