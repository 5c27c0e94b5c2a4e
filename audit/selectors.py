from typing import Any

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_event_list(*, user: Any) -> QuerySet[AuditEvent]:
    """The caller organization's events; superusers without an organization see all."""
    events = AuditEvent.objects.select_related("actor")
    if user.is_superuser and user.organization_id is None:
        return events
    return events.filter(organization_id=user.organization_id)
