"""Filter types shared by the apps' FilterSets."""

import django_filters
from django import forms


class IdFilter(django_filters.NumberFilter):
    """A record id: a whole number (NumberFilter alone would take `0.5`), documented as integer."""

    field_class = forms.IntegerField
