"""The Django admin's site: it names the product and, for a clinic admin, their clinic.

Kept apart from pms/admin.py because INSTALLED_APPS loads it before any model exists.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

PRODUCT_NAME = "Patient Management System"


class SiteAdmin(admin.AdminSite):
    site_title = PRODUCT_NAME
    index_title = "Administration"
    # The API has no web pages of its own to link to.
    site_url = None

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        organization = getattr(request.user, "organization", None)
        context["site_header"] = (
            f"{PRODUCT_NAME} · {organization.name}"
            if organization is not None
            else f"{PRODUCT_NAME} · platform"
        )
        return context


class SiteAdminConfig(AdminConfig):
    default_site = "pms.admin_site.SiteAdmin"
