import django_filters

from audit.models import AuditEvent, Outcome
from audit.selectors import audit_events_for_patient
from pms.filters import IdFilter, IsoDateTimeFilter


class AuditEventFilter(django_filters.FilterSet):
    patient = IdFilter(
        method="filter_patient",
        help_text="Patient id: every event that concerned the patient, list and search pages "
        "included.",
    )
    actor = IdFilter(field_name="actor_id", help_text="User id of the actor.")
    action = django_filters.CharFilter(
        help_text="Exact action (`patient.retrieve`) or a resource prefix ending in a dot "
        "(`patient.`).",
        method="filter_action",
    )
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    occurred_after = IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="ISO 8601, inclusive."
    )
    occurred_before = IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", help_text="ISO 8601, exclusive."
    )

    class Meta:
        model = AuditEvent
        fields = ["patient", "actor", "action", "outcome", "occurred_after", "occurred_before"]

    def filter_patient(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return audit_events_for_patient(queryset, patient_id=int(value))

    def filter_action(self, queryset, name, value):  # type: ignore[no-untyped-def]
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)
