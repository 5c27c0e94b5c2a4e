from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters

from document.models import Document, DocumentType
from pms.filters import BooleanFilter, IdFilter


class StableOrderingFilter(filters.OrderingFilter):
    """Ties are broken by id so pages never repeat or skip a row."""

    def filter(self, qs: QuerySet[Document], value: list[str] | None) -> QuerySet[Document]:
        qs = super().filter(qs, value)
        if value:
            qs = qs.order_by(*qs.query.order_by, "-id")
        return qs


class DocumentFilter(filters.FilterSet):
    patient = IdFilter(field_name="patient_id", help_text="Patient id.")
    document_type = filters.ChoiceFilter(choices=DocumentType.choices)
    is_uploaded = BooleanFilter()
    search = filters.CharFilter(
        method="filter_search", help_text="Case-insensitive match in title or filename."
    )
    ordering = StableOrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("title", "title"),
            ("size_bytes", "size_bytes"),
        ),
        help_text="created_at, updated_at, title or size_bytes; prefix - for descending.",
    )

    class Meta:
        model = Document
        fields = ["patient", "document_type", "is_uploaded"]

    def filter_search(
        self, queryset: QuerySet[Document], name: str, value: str
    ) -> QuerySet[Document]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(title__icontains=value) | Q(filename__icontains=value))
