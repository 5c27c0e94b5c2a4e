"""Admin helpers shared by the apps."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest


class OrganizationScopedAdminMixin:
    """Admin users who belong to a clinic administer that clinic's records only; superusers
    without an organization see every clinic (the same rule as the API's selectors)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        organization_id = getattr(request.user, "organization_id", None)
        if organization_id is None:
            return queryset
        return queryset.filter(organization_id=organization_id)
