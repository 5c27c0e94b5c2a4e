"""One declared output per resource: the output serializer's `Meta.fields`.

That one list is the OpenAPI schema, DRF's rendering of an object a write returns, and, through
`DeclaredOutput`, the rows that reads send. A read takes from the database the declared columns
only (`.values()`), so no model instance is built, and hands the rows to the renderer as they
come: orjson writes dates and datetimes as DRF's fields write them (pms/renderers.py). DRF's
per-field machinery, which would cost about 0.2 ms per row of a list, is not run.
tests/pms/test_declared_output.py checks that both renderings are equal.
"""

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from django.db import models
from rest_framework import serializers

# A declared field's value: a lookup of the row, or (name, lookup) pairs of a nested object.
_Source = str | tuple[tuple[str, str], ...] | None


class DeclaredOutput:
    """The rows of `serializer_class`'s declared fields, in their order.

    A field is read by its `source` (a foreign key by its id); a nested serializer's fields
    through the relation (`created_by__username`), and None when the relation is. A field that
    is no column (a model property) is named in `computed` with a function of the row.
    """

    def __init__(
        self,
        serializer_class: type[serializers.ModelSerializer[Any]],
        *,
        computed: dict[str, Callable[[dict[str, Any]], Any]] | None = None,
    ) -> None:
        self.serializer_class = serializer_class
        self.computed = computed or {}

    @cached_property
    def plan(self) -> tuple[tuple[str, _Source], ...]:
        model: Any = self.serializer_class.Meta.model
        plan: list[tuple[str, _Source]] = []
        for name, field in self.serializer_class().fields.items():
            if name in self.computed:
                plan.append((name, None))
            elif isinstance(field, serializers.BaseSerializer):
                nested = tuple(
                    (child_name, f"{field.source}__{child.source}")
                    for child_name, child in field.fields.items()  # type: ignore[attr-defined]
                )
                plan.append((name, nested))
            else:
                column = model._meta.get_field(field.source)
                is_key = isinstance(column, models.ForeignKey)
                plan.append((name, column.attname if is_key else field.source))  # type: ignore[union-attr]
        return tuple(plan)

    @cached_property
    def lookups(self) -> tuple[str, ...]:
        columns: list[str] = []
        for _, source in self.plan:
            if isinstance(source, tuple):
                columns.extend(lookup for _, lookup in source)
            elif source is not None:
                columns.append(source)
        return tuple(columns)

    def values(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """`queryset` as `.values()` of the declared columns, for `rows`."""
        return queryset.values(*self.lookups)

    def rows(self, values: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._row(row) for row in values]

    def row_of(self, instance: models.Model) -> dict[str, Any]:
        """The row of one object already read (a detail)."""
        return self._row({lookup: _resolve(instance, lookup) for lookup in self.lookups})

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, source in self.plan:
            if source is None:
                row[name] = None  # keeps its place; computed below
            elif isinstance(source, tuple):
                nested = {child: values[lookup] for child, lookup in source}
                # A null relation reads as all nulls; its key (the first field) says so.
                row[name] = None if nested[source[0][0]] is None else nested
            else:
                row[name] = values[source]
        for name, compute in self.computed.items():
            row[name] = compute(row)
        return row


def _resolve(instance: Any, lookup: str) -> Any:
    value = instance
    for attribute in lookup.split("__"):
        if value is None:
            return None
        value = getattr(value, attribute)
    return value
