"""Filter types shared by the apps' FilterSets."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet


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
