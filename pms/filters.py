"""Filter types shared by the apps' FilterSets."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request


class IdFilter(django_filters.NumberFilter):
    """A record id: a whole number (NumberFilter alone would take `0.5`), documented as integer."""

    field_class = forms.IntegerField


class StrictBooleanField(forms.Field):
    """`true`/`false` (or `1`/`0`); an empty value means "not given"."""

    default_error_messages = {"invalid": "Use true or false."}

    def to_python(self, value: object) -> bool | None:
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    """django-filter's BooleanFilter reads any unknown value (`?is_uploaded=yes`) as "no
    filter" and returns everything; this one answers 400 instead."""

    field_class = StrictBooleanField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 instant, compared in UTC: PostgreSQL refuses offsets beyond ±15:59, which
    ISO 8601 (and Python) allow, so `+19:44` would otherwise be a 500."""

    def filter(self, qs: QuerySet[Any], value: datetime | None) -> QuerySet[Any]:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return super().filter(qs, value)


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipping the FilterSet when the request gives none of its
    parameters and none is required: the queryset would come back unchanged, and building and
    validating the FilterSet costs about a millisecond on every unfiltered list page."""

    _skippable: dict[type, frozenset[str] | None] = {}

    @classmethod
    def parameters_if_optional(cls, filterset_class: type) -> frozenset[str] | None:
        """The query parameters the FilterSet reads, or None when it cannot be skipped (a
        required filter, or a filter reading several suffixed parameters)."""
        if filterset_class not in cls._skippable:
            filters = filterset_class.base_filters.values()  # type: ignore[attr-defined]
            optional = all(
                not f.extra.get("required") and not issubclass(f.field_class, forms.MultiValueField)
                for f in filters
            )
            names = frozenset(filterset_class.base_filters)  # type: ignore[attr-defined]
            cls._skippable[filterset_class] = names if optional else None
        return cls._skippable[filterset_class]

    def filter_queryset(self, request: Request, queryset: Any, view: Any) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            names = self.parameters_if_optional(filterset_class)
            if names is not None and names.isdisjoint(request.query_params):
                return queryset
        return super().filter_queryset(request, queryset, view)
