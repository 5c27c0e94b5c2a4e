"""The FHIR R4 endpoints (docs/fhir.md). Thin: parse, call a selector or service, map, render."""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import CLINICAL_ROLES, Organization
from document.selectors import document_get, document_list
from document.services import document_sign_download
from fhir.capability import capability_statement
from fhir.export import EXPORT_TYPES, export_cancel, export_kick_off, export_open_file
from fhir.http import FHIR_NDJSON, FHIRBaseView, FHIRView
from fhir.mappers import document_reference_resource, instant, operation_outcome, patient_resource
from fhir.models import ExportStatus
from fhir.schema import FHIR_RESOURCE
from fhir.search import (
    DOCUMENT_REFERENCE_SEARCH,
    PATIENT_SEARCH,
    RESULT_PARAMETERS,
    FHIRPagination,
    SearchType,
    document_rows,
    instant_value,
    invalid,
    patient_rows,
)
from fhir.selectors import export_job_get, fhir_patient_get
from patient.selectors import patient_count, patient_list
from pms.bounded import bounded
from pms.exceptions import ApplicationError
from pms.permissions import IsOrgAdmin, user_has_role

_FHIR_TAG = ["FHIR R4"]


def base_url(request: Request) -> str:
    """Scheme and host as the client reached us: resources' absolute urls start with it."""
    return request.build_absolute_uri("/").rstrip("/")


class MayDownload(BasePermission):
    """The role rule of the REST `download_url`: staff never read files."""

    message = "Your role does not allow downloading documents."

    def has_permission(self, request: Any, view: Any) -> bool:
        return user_has_role(request.user, CLINICAL_ROLES)


class ExportFailed(ApplicationError):
    status_code = 500
    default_code = "export_failed"
    default_detail = "The export failed; start a new one."


@extend_schema(tags=_FHIR_TAG, auth=[], responses={200: FHIR_RESOURCE})
class MetadataView(FHIRBaseView):
    """The CapabilityStatement: resources, interactions, search parameters and operations."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        path = reverse("fhir-metadata").removesuffix("metadata").rstrip("/")
        return Response(
            capability_statement(base_url=base_url(request) + path, date=instant(timezone.now()))
        )


class SearchView(FHIRView):
    """A search: the selector's rows, narrowed by `search`, as a `searchset` Bundle."""

    search: SearchType
    resource_type: str

    def rows(self, request: Request) -> Any:
        raise NotImplementedError

    def resource(self, row: Any, request: Request) -> dict[str, Any]:
        raise NotImplementedError

    def patient_id(self, row: Any) -> int:
        raise NotImplementedError

    @bounded
    def get(self, request: Request) -> Response:
        rows, self.used_parameters = self.search.narrow(self.rows(request), request)
        paginator = FHIRPagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        self.audit_patient_ids = [self.patient_id(row) for row in page]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        self.audit_extra = {"count": paginator.count}
        if paginator.count_exact:
            bundle["total"] = paginator.count
        else:
            self.audit_extra["count_capped"] = True
        bundle["link"] = self.links(request, paginator)
        root = base_url(request) + reverse("fhir-metadata").removesuffix("metadata")
        bundle["entry"] = [
            {
                "fullUrl": f"{root}{self.resource_type}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in (self.resource(row, request) for row in page)
        ]
        response = Response(bundle)
        response["X-Count-Exact"] = "true" if paginator.count_exact else "false"
        return response

    def links(self, request: Request, paginator: FHIRPagination) -> list[dict[str, str]]:
        """Links carry only the parameters the search used (lenient handling drops the rest)."""
        kept = [
            (name, value)
            for name, values in request.query_params.lists()
            if name in self.used_parameters and name != "_page"
            for value in values
        ]
        url = request.build_absolute_uri(request.path)

        def page_url(number: int) -> str:
            query = kept + ([("_page", str(number))] if number > 1 else [])
            return f"{url}?{urlencode(query)}" if query else url

        links = [{"relation": "self", "url": page_url(paginator.page_number)}]
        if paginator.has_next:
            links.append({"relation": "next", "url": page_url(paginator.page_number + 1)})
        if paginator.page_number > 1:
            links.append({"relation": "previous", "url": page_url(paginator.page_number - 1)})
        return links


_SEARCH_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, description=description)
    for name, description in (
        ("_count", "Results per page, 1 to 100 (default 20)."),
        ("_page", "Page number (from the Bundle's next/previous links)."),
        ("_sort", "Comma-separated keys, `-` for descending."),
    )
]


@extend_schema_view(
    get=extend_schema(
        tags=_FHIR_TAG,
        summary="Search patients (FHIR)",
        operation_id="fhir_patient_search",
        parameters=[
            *_SEARCH_PARAMETERS,
            *(OpenApiParameter(name, OpenApiTypes.STR) for name in PATIENT_SEARCH.conditions),
        ],
        responses={
            200: OpenApiResponse(FHIR_RESOURCE, description="searchset Bundle"),
        },
    )
)
class PatientSearchView(SearchView):
    audit_resource = "patient"
    audit_action = "fhir_search"
    search = PATIENT_SEARCH
    resource_type = "Patient"

    def rows(self, request: Request) -> Any:
        return patient_rows(patient_list(user=request.user))

    def resource(self, row: Any, request: Request) -> dict[str, Any]:
        return patient_resource(row, organization_slug=row.organization_slug)

    def patient_id(self, row: Any) -> int:
        return int(row.pk)

    def known_count(self) -> int | None:
        """An unfiltered search counts from the per-clinic counters, as the REST list does."""
        if self.used_parameters - RESULT_PARAMETERS:
            return None
        return patient_count(user=self.request.user)


@extend_schema_view(
    get=extend_schema(
        tags=_FHIR_TAG,
        summary="Search document references (FHIR)",
        operation_id="fhir_documentreference_search",
        parameters=[
            *_SEARCH_PARAMETERS,
            *(
                OpenApiParameter(name, OpenApiTypes.STR)
                for name in DOCUMENT_REFERENCE_SEARCH.conditions
            ),
        ],
        responses={
            200: OpenApiResponse(FHIR_RESOURCE, description="searchset Bundle"),
        },
    )
)
class DocumentReferenceSearchView(SearchView):
    audit_resource = "document"
    audit_action = "fhir_search"
    search = DOCUMENT_REFERENCE_SEARCH
    resource_type = "DocumentReference"

    def rows(self, request: Request) -> Any:
        return document_rows(document_list(user=request.user))

    def resource(self, row: Any, request: Request) -> dict[str, Any]:
        return document_reference_resource(row, base_url=base_url(request))

    def patient_id(self, row: Any) -> int:
        return int(row.patient_id)


@extend_schema_view(
    get=extend_schema(
        tags=_FHIR_TAG,
        summary="Read a patient (FHIR)",
        operation_id="fhir_patient_read",
        responses={200: FHIR_RESOURCE},
    )
)
class PatientReadView(FHIRView):
    """A patient; `ETag: W/"<version>"`. An archived patient of the clinic is 410 Gone."""

    audit_resource = "patient"
    audit_action = "fhir_read"
    error_responses = ("410",)

    def get(self, request: Request, pk: str) -> Response:
        try:
            patient = fhir_patient_get(user=request.user, pk=pk)
        except ApplicationError:  # Gone: the clinic's own patient, so the trail names it
            self.audit_patient_ids = [int(pk)]
            raise
        self.audit_patient_ids = [patient.pk]
        slug = Organization.objects.values_list("slug", flat=True).get(pk=patient.organization_id)
        response = Response(patient_resource(patient, organization_slug=slug))
        response["ETag"] = f'W/"{patient.version}"'
        return response


@extend_schema_view(
    get=extend_schema(
        tags=_FHIR_TAG,
        summary="Read a document reference (FHIR)",
        operation_id="fhir_documentreference_read",
        responses={200: FHIR_RESOURCE},
    )
)
class DocumentReferenceReadView(FHIRView):
    audit_resource = "document"
    audit_action = "fhir_read"

    def get(self, request: Request, pk: str) -> Response:
        document = document_get(user=request.user, pk=pk)
        self.audit_patient_ids = [document.patient_id]
        return Response(document_reference_resource(document, base_url=base_url(request)))


@extend_schema_view(
    get=extend_schema(
        tags=_FHIR_TAG,
        summary="Download a document's file (redirect)",
        operation_id="fhir_documentreference_file",
        responses={
            302: OpenApiResponse(description="Location: a fresh signed URL"),
        },
    )
)
class DocumentFileView(FHIRView):
    """The attachment url: a redirect to a fresh signed download URL, audited as the REST
    `download_url` is, under the same role rule."""

    audit_resource = "document"
    audit_action = "download_url"
    error_responses = ("409",)
    permission_classes = [MayDownload]

    def get(self, request: Request, pk: str) -> Response:
        document = document_get(user=request.user, pk=pk)
        self.audit_patient_ids = [document.patient_id]
        signed = document_sign_download(document=document)
        return Response(status=302, headers={"Location": request.build_absolute_uri(signed.url)})


_KICK_OFF_PARAMETERS = {"_type", "_since", "_outputFormat"}
_NDJSON_FORMATS = {FHIR_NDJSON, "application/ndjson", "ndjson"}


@extend_schema(
    tags=_FHIR_TAG,
    parameters=[
        OpenApiParameter(
            "Prefer",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            required=True,
            description="respond-async",
        ),
        OpenApiParameter(
            "_type", OpenApiTypes.STR, description="Patient, DocumentReference (comma-separated)."
        ),
        OpenApiParameter(
            "_since",
            OpenApiTypes.DATETIME,
            description="Only resources changed after this instant.",
        ),
        OpenApiParameter("_outputFormat", OpenApiTypes.STR, description="application/fhir+ndjson"),
    ],
    responses={
        202: OpenApiResponse(FHIR_RESOURCE, description="Content-Location: the status URL"),
    },
)
class ExportKickOffView(FHIRView):
    """Bulk Data kick-off (clinic admins): 202 with `Content-Location`, the status URL to poll."""

    audit_resource = "export"
    audit_action = "kick_off"
    permission_classes = [IsOrgAdmin]

    def export_options(self, request: Request) -> tuple[list[str], datetime | None]:
        """The requested types and `_since`; checked before the group, so a malformed
        request is a 400 whatever it names."""
        if "respond-async" not in request.headers.get("Prefer", ""):
            raise invalid("Prefer", "A bulk export needs the header Prefer: respond-async.")
        params = request.query_params
        unknown = set(params) - _KICK_OFF_PARAMETERS - {"_format"}
        if unknown:
            raise invalid(sorted(unknown)[0], "Unknown export parameter.")
        types = [
            value.strip()
            for value in params.get("_type", ",".join(EXPORT_TYPES)).split(",")
            if value.strip()
        ]
        if not types or set(types) - set(EXPORT_TYPES):
            raise invalid("_type", f"Export types: {', '.join(EXPORT_TYPES)}.")
        if params.get("_outputFormat", FHIR_NDJSON) not in _NDJSON_FORMATS:
            raise invalid("_outputFormat", "Only application/fhir+ndjson is produced.")
        since = instant_value("_since", params["_since"]) if "_since" in params else None
        return list(dict.fromkeys(types)), since

    @bounded
    def kick_off(
        self, request: Request, options: tuple[list[str], datetime | None], group: int | None
    ) -> Response:
        types, since = options
        job = export_kick_off(
            actor=request.user,
            request_url=request.build_absolute_uri(),
            base_url=base_url(request),
            types=types,
            since=since,
            group_organization_id=group,
        )
        # The patient count is known when the job is done: the manifest's event records it.
        self.audit_extra = {"export_id": job.pk, "types": job.types}
        response = Response(
            operation_outcome(
                severity="information", code="informational", diagnostics="Export started."
            ),
            status=202,
        )
        response["Content-Location"] = request.build_absolute_uri(
            reverse("fhir-export-status", kwargs={"key": job.key})
        )
        return response


class PatientExportView(ExportKickOffView):
    def get(self, request: Request) -> Response:
        return self.kick_off(request, self.export_options(request), None)


class GroupExportView(ExportKickOffView):
    """`Group/{organization id}/$export`: the whole clinic; another clinic is not found."""

    def get(self, request: Request, group_id: str) -> Response:
        options = self.export_options(request)
        clinic = (
            Organization.objects.visible_to(request.user).filter(pk=group_id).first()
            if group_id.isdigit()
            else None
        )
        if clinic is None:
            raise NotFound("Group not found.")
        return self.kick_off(request, options, clinic.pk)


@extend_schema(
    tags=_FHIR_TAG,
    responses={
        (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="Manifest"),
        202: OpenApiResponse(FHIR_RESOURCE, description="In progress (`X-Progress`); cancelled"),
    },
)
class ExportStatusView(FHIRView):
    """Poll (202 with `X-Progress`, then 200 with the manifest) or cancel (DELETE) a job.

    Only clinic admins start exports, so only they poll them; of a job, only its requester.
    """

    audit_resource = "export"
    permission_classes = [IsOrgAdmin]
    error_responses = ("500",)

    def get_audit_action(self, request: Request) -> str:
        return "export.cancel" if request.method == "DELETE" else "export.status"

    def get(self, request: Request, key: str) -> Response:
        job = export_job_get(user=request.user, key=key)
        self.audit_extra = {"export_id": job.pk}
        if job.status == ExportStatus.FAILED:
            raise ExportFailed()
        if job.status != ExportStatus.COMPLETED:
            return Response(
                operation_outcome(
                    severity="information", code="informational", diagnostics="In progress."
                ),
                status=202,
                headers={"X-Progress": f"{job.progress}%", "Retry-After": "5"},
            )
        self.audit_extra["patient_count"] = job.patient_count
        files = [
            {
                "type": entry["type"],
                "url": request.build_absolute_uri(
                    reverse("fhir-export-file", kwargs={"key": job.key, "index": index})
                ),
                "count": entry["count"],
            }
            for index, entry in enumerate(job.output)
        ]
        manifest = {
            "transactionTime": instant(job.transaction_time or job.created_at),
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": files,
            "error": [],
        }
        response = Response(manifest, content_type="application/json")
        response["Expires"] = (
            job.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT") if job.expires_at else ""
        )
        return response

    def delete(self, request: Request, key: str) -> Response:
        job = export_job_get(user=request.user, key=key)
        self.audit_extra = {"export_id": job.pk}
        export_cancel(job=job)
        return Response(
            operation_outcome(
                severity="information", code="informational", diagnostics="Export cancelled."
            ),
            status=202,
        )


@extend_schema(
    tags=_FHIR_TAG,
    responses={(200, FHIR_NDJSON): OpenApiTypes.BINARY},
)
class ExportFileView(FHIRView):
    """One NDJSON file of a finished job, for the requester's token only."""

    audit_resource = "export"
    audit_action = "file"
    permission_classes = [IsOrgAdmin]
    extra_media_types = frozenset({FHIR_NDJSON, "application/ndjson", "application/octet-stream"})

    def get(self, request: Request, key: str, index: int) -> FileResponse:
        job = export_job_get(user=request.user, key=key)
        opened = (
            export_open_file(job=job, index=index) if job.status == ExportStatus.COMPLETED else None
        )
        if opened is None:
            raise NotFound("Export file not found.")
        handle, entry = opened
        self.audit_extra = {
            "export_id": job.pk,
            "type": entry["type"],
            "count": entry["count"],
        }
        return FileResponse(handle, content_type=FHIR_NDJSON)


@extend_schema(exclude=True)  # not an operation
class UnknownPathView(FHIRView):
    """Any other path under /fhir/: a 404 OperationOutcome (401 when anonymous), not Django's
    HTML page; on record like the REST API's unknown patient-data paths."""

    audit_resource = "fhir"
    audit_action = "unknown_path"

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("No such FHIR endpoint.")

    post = put = patch = delete = get
