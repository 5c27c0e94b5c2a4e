from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from audit.models import AuditEvent


def narrow_audit_events(events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    """Of the events a user may see (`AuditEvent.objects.visible_to`: their clinic's, or every
    one for a superuser; events of no clinic, such as failed sign-ins of unknown names, only
    superusers see), what the auditor API lists."""
    return events.select_related("actor")


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
