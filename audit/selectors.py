from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from audit.models import AuditEvent


def audit_event_list(*, user: Any) -> QuerySet[AuditEvent]:
    """The caller organization's events; superusers without an organization see all."""
    events = AuditEvent.objects.select_related("actor")
    if user.is_superuser and user.organization_id is None:
        return events
    return events.filter(organization_id=user.organization_id)


def audit_events_for_patient(
    events: QuerySet[AuditEvent], *, patient_id: int
) -> QuerySet[AuditEvent]:
    """Events whose `patient_ids` contain the patient, list and search exposures included."""
    if connection.vendor == "postgresql":
        # jsonb containment, served by the GIN index of migration 0002.
        return events.filter(patient_ids__contains=[patient_id])
    # SQLite has no JSON containment lookup in Django; json_each does the same.
    matching = RawSQL(
        "SELECT event.id FROM audit_auditevent AS event, json_each(event.patient_ids) "
        "WHERE json_each.value = %s",
        (patient_id,),
    )
    return events.filter(id__in=matching)
