"""Filter types shared by the apps' FilterSets."""

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
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


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, read in UTC. An instant whose UTC time falls outside years 1-9999
    (`9999-12-31T23:59:59-15:00`) is invalid input, not an OverflowError."""

    def to_python(self, value: Any) -> datetime | None:
        parsed: datetime | None = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 instant, compared in UTC: PostgreSQL refuses offsets beyond ±15:59, which
    ISO 8601 (and Python) allow, so `+19:44` would otherwise be a 500."""

    field_class = UTCIsoDateTimeField


@lru_cache(maxsize=128)  # bounded: a view with `filterset_fields` gets a new class per request
def optional_parameters(filterset_class: type) -> frozenset[str] | None:
    """The query parameters a FilterSet reads, or None when it must always run: a required
    filter (its absence is a 400) or one reading several suffixed parameters."""
    filters = filterset_class.base_filters  # type: ignore[attr-defined]
    if any(
        f.extra.get("required") or issubclass(f.field_class, forms.MultiValueField)
        for f in filters.values()
    ):
        return None
    return frozenset(filters)


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, with no FilterSet when the request gives none of its parameters
    and none is required: the queryset would come back unchanged, and building and validating
    the FilterSet costs about a millisecond on every unfiltered list page."""

    def get_filterset(self, request: Request, queryset: Any, view: Any) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return None
        names = optional_parameters(filterset_class)
        if names is not None and names.isdisjoint(request.query_params):
            return None
        return filterset_class(**self.get_filterset_kwargs(request, queryset, view))
