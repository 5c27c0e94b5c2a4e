"""How FHIR views speak HTTP (docs/fhir.md): `application/fhir+json` only, every error an
OperationOutcome with its status.

The error body is built from the REST envelope (`pms.exceptions.exception_handler` runs first,
so rollback, `WWW-Authenticate` and `Retry-After` are the same as everywhere else); only its
shape changes, and only for views built on `FHIRView`.
"""

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.mixins import AuditedViewMixin
from fhir.mappers import operation_outcome
from fhir.schema import FHIRAutoSchema
from pms.exceptions import ApplicationError, exception_handler
from pms.renderers import ORJSONRenderer

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"

# The FHIR issue type of each status (http://hl7.org/fhir/valueset-issue-type.html).
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    429: "throttled",
    503: "transient",
}


class Gone(ApplicationError):
    status_code = 410
    default_code = "gone"
    default_detail = "The resource has been archived."


class FHIRJSONRenderer(ORJSONRenderer):
    media_type = FHIR_JSON
    format = "json"


class FHIRContentNegotiation(DefaultContentNegotiation):
    """JSON or nothing: an XML `Accept` or `_format=xml` is a 406, as is any type the view
    does not serve. `_format` wins over `Accept`, as FHIR says."""

    JSON_TYPES = frozenset(
        {FHIR_JSON, "application/json", "application/json+fhir", "json", "*/*", "application/*"}
    )

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        wanted = request.query_params.get("_format") or request.META.get("HTTP_ACCEPT", "")
        media_types = {part.split(";")[0].strip().lower() for part in wanted.split(",")} - {""}
        served = self.JSON_TYPES | getattr(request, "fhir_extra_media_types", frozenset())
        if media_types and not media_types & served:
            raise NotAcceptable(f"Only {FHIR_JSON} is served.")
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def fhir_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    response = exception_handler(exc, context)
    error = response.data["error"]
    details = error["details"] if isinstance(error["details"], dict) else {}
    diagnostics = error["message"]
    if details:
        problems = "; ".join(
            f"{key}: {' '.join(map(str, value))}"
            for key, value in details.items()
            if isinstance(value, list)
        )
        diagnostics = f"{diagnostics}: {problems}" if problems else diagnostics
    response.data = operation_outcome(
        code=ISSUE_TYPES.get(
            response.status_code, "exception" if response.status_code >= 500 else "processing"
        ),
        diagnostics=diagnostics,
        details=details,
    )
    # The audit trail keeps the REST error code, which is finer than the FHIR issue type.
    response.error_code = error["code"]  # type: ignore[attr-defined]
    return response


class FHIRBaseView(APIView):
    """JSON only, errors as OperationOutcome."""

    renderer_classes = [FHIRJSONRenderer]
    content_negotiation_class = FHIRContentNegotiation
    schema = FHIRAutoSchema()
    # Media types the view serves besides JSON (the export files are NDJSON).
    extra_media_types: frozenset[str] = frozenset()

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        drf_request.fhir_extra_media_types = self.extra_media_types  # type: ignore[attr-defined]
        return drf_request

    def get_exception_handler(self) -> Any:
        return fhir_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # The caller is settled before the media type (DRF negotiates first): a refused
        # `Accept` with a broken token is then a 401, and its audit event names the caller
        # instead of failing on the token.
        self.perform_authentication(request)
        super().initial(request, *args, **kwargs)


class FHIRView(AuditedViewMixin, FHIRBaseView):
    """The base of every FHIR endpoint with data: same JWT, roles and audit as the REST API.

    As patient-data views, their trail fails closed and every answer, errors included, is
    `Cache-Control: no-store` (audit/mixins.py).
    """

    patient_data = True
    permission_classes = [IsAuthenticated]
    # Added to the event's details by the handler (ids of a job, counts; never values).
    audit_extra: dict[str, Any]

    def get_audit_details(self, request: Request, response: Response) -> dict[str, Any]:
        details = super().get_audit_details(request, response)
        details.update(getattr(self, "audit_extra", {}))
        if response.status_code >= 400:
            details["error"] = getattr(response, "error_code", "")
        return details
