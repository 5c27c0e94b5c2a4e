import django_filters

from audit.models import AuditEvent, Outcome


class AuditEventFilter(django_filters.FilterSet):
    patient = django_filters.NumberFilter(field_name="patient_id", help_text="Patient id.")
    actor = django_filters.NumberFilter(field_name="actor_id", help_text="User id of the actor.")
    action = django_filters.CharFilter(
        help_text="Exact action (`patient.retrieve`) or a resource prefix ending in a dot "
        "(`patient.`).",
        method="filter_action",
    )
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    occurred_after = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="ISO 8601, inclusive."
    )
    occurred_before = django_filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt", help_text="ISO 8601, exclusive."
    )

    class Meta:
        model = AuditEvent
        fields = ["patient", "actor", "action", "outcome", "occurred_after", "occurred_before"]

    def filter_action(self, queryset, name, value):  # type: ignore[no-untyped-def]
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)
