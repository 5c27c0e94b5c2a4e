"""Query parameters of the patient list and search. Every value is validated: a bad one is a
400 in the error envelope, never silently ignored."""

from datetime import date
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_filters.constants import EMPTY_VALUES
from rest_framework.exceptions import ValidationError

from patient import search
from patient.models import Gender, Patient
from patient.validators import MAX_AGE, normalize_mrn


def years_before(today: date, years: int) -> date:
    """The same day `years` earlier; 29 February becomes 28 February in common years."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


class AgeRangeForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        age_min, age_max = cleaned.get("age_min"), cleaned.get("age_max")
        if age_min is not None and age_max is not None and age_min > age_max:
            self.add_error("age_max", "age_max must not be lower than age_min.")
        return cleaned


class AgeFilter(django_filters.Filter):
    field_class = forms.IntegerField


class PatientOrderingFilter(django_filters.OrderingFilter):
    """`age` sorts by birth date reversed; `id` breaks ties so pages never overlap."""

    def get_ordering_value(self, param: str) -> str:
        value: str = super().get_ordering_value(param)
        if value.lstrip("-") == "date_of_birth":
            return "date_of_birth" if value.startswith("-") else "-date_of_birth"
        return value

    def filter(self, qs: QuerySet[Patient], value: Any) -> QuerySet[Patient]:
        if value in EMPTY_VALUES:
            return qs
        ordering = [self.get_ordering_value(param) for param in value if param]
        if not ordering:  # `?ordering=,` names no field
            raise ValidationError({"ordering": ["Name at least one field to order by."]})
        tie_breaker = "-id" if ordering[-1].startswith("-") else "id"
        return qs.order_by(*ordering, tie_breaker)


class PatientAttributeFilterSet(django_filters.FilterSet):
    """Gender and age range, shared by the list and the ranked search. Ages become birth-date
    ranges so the (organization, is_active, date_of_birth) index serves them."""

    gender = django_filters.ChoiceFilter(choices=Gender.choices)
    age_min = AgeFilter(
        method="filter_age_min",
        min_value=0,
        max_value=MAX_AGE,
        help_text="Patients at least this old (completed years).",
    )
    age_max = AgeFilter(
        method="filter_age_max",
        min_value=0,
        max_value=MAX_AGE,
        help_text="Patients at most this old (completed years).",
    )

    class Meta:
        model = Patient
        fields = ["gender"]
        form = AgeRangeForm

    def filter_age_min(self, queryset: QuerySet[Patient], name: str, value: int) -> Any:
        return queryset.filter(date_of_birth__lte=years_before(timezone.localdate(), value))

    def filter_age_max(self, queryset: QuerySet[Patient], name: str, value: int) -> Any:
        # At most N years old: not yet N + 1.
        return queryset.filter(date_of_birth__gt=years_before(timezone.localdate(), value + 1))


class PatientFilterSet(PatientAttributeFilterSet):
    mrn = django_filters.CharFilter(
        method="filter_mrn",
        max_length=32,
        help_text="Exact MRN (case-insensitive), current or the former MRN of a merged record.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=100,
        help_text="Substring of the name, email, phone or MRN (case-insensitive).",
    )
    ordering = PatientOrderingFilter(
        fields=(
            ("full_name", "full_name"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("date_of_birth", "age"),
            ("mrn", "mrn"),
        ),
        help_text="Sort key; prefix with - for descending. Default: -created_at.",
    )

    class Meta(PatientAttributeFilterSet.Meta):
        pass

    def filter_search(self, queryset: QuerySet[Patient], name: str, value: str) -> Any:
        return queryset.filter(search.search_condition(value))

    def filter_mrn(self, queryset: QuerySet[Patient], name: str, value: str) -> Any:
        return queryset.filter(Q(mrn=normalize_mrn(value)) | search.alias_condition(value))


class PatientSearchFilterSet(PatientAttributeFilterSet):
    q = django_filters.CharFilter(
        method="filter_q",
        required=True,
        min_length=2,
        max_length=100,
        help_text="Name, MRN, email or phone. Typo-tolerant on PostgreSQL; best matches first.",
    )

    class Meta(PatientAttributeFilterSet.Meta):
        pass

    def filter_q(self, queryset: QuerySet[Patient], name: str, value: str) -> Any:
        return search.ranked_search(queryset, value)
