from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from audit.views import UnknownPathView
from fhir.views import UnknownPathView as UnknownFHIRPathView
from pms.exceptions import api_not_found
from pms.health import healthz, metrics, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Both pages load scripts from files only, as their Content-Security-Policy requires
    # (pms/middleware.py): Swagger UI's init script is served by the split view at ?script=.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="pms/redoc.html"),
        name="redoc",
    ),
    path("api/", include("accounts.urls")),
    path("api/patient/", include("patient.urls")),
    path("api/document/", include("document.urls")),
    path("api/otp/", include("otp.urls")),
    path("api/audit/", include("audit.urls")),
    path("fhir/R4/", include("fhir.urls")),
    # Unknown paths under patient-data prefixes are audited 404s; anything else under /api/
    # is a plain 404 in the error envelope, DEBUG or not.
    re_path(r"^api/(?P<resource>patient|document)/", UnknownPathView.as_view()),
    re_path(r"^api/", api_not_found),
    # Not under "fhir/R4/" as the URL walks see it: the catch-all is no endpoint of its own.
    re_path(r"^fhir/", UnknownFHIRPathView.as_view()),
]

handler400 = "pms.exceptions.bad_request"
handler500 = "pms.exceptions.server_error"
