import re
from typing import Any, cast

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role, User
from audit.mixins import AuditedViewMixin
from patient import selectors, services
from patient.filters import PatientFilterSet, PatientSearchFilterSet
from patient.models import Patient
from patient.search import RankedPagination
from patient.serializers import (
    PATIENT_OUTPUT,
    DuplicateCandidateSerializer,
    IncludeArchivedQuerySerializer,
    PatientCreateSerializer,
    PatientHistoryEntrySerializer,
    PatientMergeInputSerializer,
    PatientMergeSerializer,
    PatientSerializer,
    PatientSummarySerializer,
    PatientUnmergeInputSerializer,
    PatientUpdateSerializer,
)
from pms.bounded import bounded
from pms.exceptions import PreconditionFailed
from pms.idempotency import IDEMPOTENCY_KEY_HEADER, idempotent
from pms.permissions import HasActionRole
from pms.scoping import ScopedViewMixin

# Query parameters that narrow the list (ordering and paging do not change its size).
FILTER_PARAMS = frozenset(PatientFilterSet.base_filters) - {"ordering"}
_ENTITY_TAG = re.compile(r'^(?:W/)?"?(\d+)"?$')
# Versions are PositiveIntegerFields: ten digits at most. A longer number is no tag this API
# gave, and int() refuses one past 4,300 digits.
_MAX_VERSION_DIGITS = 10

INCLUDE_ARCHIVED = OpenApiParameter(
    "include_archived",
    OpenApiTypes.BOOL,
    description="Organization admins only: also return archived patients.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The ETag read before (e.g. `"3"`); 412 when the patient has changed since.',
)


def etag_header(status_code: int) -> OpenApiParameter:
    return OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[status_code],
        description="The patient's version, quoted; send it back in If-Match.",
    )


def parse_if_match(header: str | None) -> set[int] | None:
    """The versions an If-Match header accepts; None when absent or `*` (any version).

    The ETag is the version number, so a tag that a proxy weakened (`W/"3"`) still names it.
    Unparseable tags name no version: the precondition fails. A number too long to be a
    version is invalid input (400).
    """
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        match = _ENTITY_TAG.match(tag.strip())
        if match:
            digits = match.group(1)
            if len(digits) > _MAX_VERSION_DIGITS:
                raise serializers.ValidationError(
                    {"If-Match": [f"A version has at most {_MAX_VERSION_DIGITS} digits."]}
                )
            versions.add(int(digits))
    return versions


def caller(request: Request) -> User:
    """The authenticated caller (the permission classes have run)."""
    return cast(User, request.user)


def etag(patient: Patient) -> str:
    return f'"{patient.version}"'


@extend_schema_view(
    list=extend_schema(summary="List patients", parameters=[INCLUDE_ARCHIVED]),
    retrieve=extend_schema(
        summary="Get a patient", parameters=[INCLUDE_ARCHIVED, etag_header(200)]
    ),
)
class PatientViewSet(
    AuditedViewMixin,
    ScopedViewMixin,
    viewsets.GenericViewSet,
):
    """Patients of the caller's organization. DELETE archives; nothing is hard-deleted."""

    audit_resource = "patient"
    patient_data = True
    audit_patient_key = "id"

    permission_classes = [IsAuthenticated, HasActionRole]
    action_roles = {
        "destroy": {Role.ADMIN, Role.CLINICIAN},
        "restore": {Role.ADMIN},
        "merge": {Role.ADMIN, Role.CLINICIAN},
        "unmerge": {Role.ADMIN, Role.CLINICIAN},
    }
    serializer_class = PatientSerializer
    scoped_model = Patient
    queryset = Patient.objects.none()  # for the schema; requests use get_queryset()

    @property
    def filterset_class(self) -> type | None:
        return {"list": PatientFilterSet, "search": PatientSearchFilterSet}.get(self.action or "")

    @property
    def error_responses(self) -> tuple[str, ...]:
        return {
            "partial_update": ("412",),
            "destroy": ("412",),
            "merge": ("412",),
            "create": ("409", "422"),
            "unmerge": ("409",),
        }.get(self.action or "", ())

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {
            "create": PatientCreateSerializer,
            "partial_update": PatientUpdateSerializer,
        }.get(self.action or "", PatientSerializer)

    def get_audit_patient_ids(self, response: Response) -> Any:
        # Detail routes (archive, summary, history...) concern the patient in the URL.
        explicit = getattr(self, "audit_patient_ids", None)
        if explicit is None and "pk" in self.kwargs and response.status_code < 400:
            return [self.kwargs["pk"]]
        return super().get_audit_patient_ids(response)

    def get_audit_details(self, request: Request, response: Response) -> dict[str, Any]:
        details = super().get_audit_details(request, response)
        # Free text bounded by the serializer, and by contract no patient data (schema).
        if self.action == "create" and getattr(self, "confirmed_new", False):
            details["confirm_new"] = True
            details["reason"] = self.confirm_reason
        return details

    def include_archived(self) -> bool:
        # Read by the queryset and by the count of one request: parsed once.
        if not hasattr(self, "_include_archived"):
            params = IncludeArchivedQuerySerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            include = bool(params.validated_data["include_archived"])
            if include and not selectors.can_see_archived(self.request.user):
                raise PermissionDenied(
                    "Only organization administrators may see archived patients."
                )
            self._include_archived = include
        return self._include_archived

    def narrow_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        include = self.action in ("list", "search") and self.include_archived()
        return selectors.narrow_patients(queryset, user=self.request.user, include_archived=include)

    def known_count(self) -> int | None:
        """The pagination's `count` of an unfiltered list, from the counters (None: count)."""
        if self.action != "list" or set(self.request.query_params) & FILTER_PARAMS:
            return None
        return selectors.patient_count(
            user=self.request.user, include_archived=self.include_archived()
        )

    def get_object(self) -> Patient:
        include = self.action in ("retrieve", "summary") and self.include_archived()
        patient = selectors.patient_get(
            user=self.request.user,
            pk=self.kwargs["pk"],
            include_archived=include,
            # A merged record's detail tells whoever holds its id where the chart went.
            include_merged=self.action == "retrieve",
        )
        self.check_object_permissions(self.request, patient)
        return patient

    def _patient_response(
        self, patient: Patient, status_code: int = 200, body: dict[str, Any] | None = None
    ) -> Response:
        # A write answers with DRF's rendering (strings only): an idempotent replay stores it.
        data = PatientSerializer(patient).data if body is None else body
        response = Response(data, status=status_code)
        response["ETag"] = etag(patient)
        return response

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patients = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(PATIENT_OUTPUT.values(patients)) or []
        return self.get_paginated_response(PATIENT_OUTPUT.rows(page))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        return self._patient_response(patient, body=PATIENT_OUTPUT.row_of(patient))

    @extend_schema(
        summary="Register a patient",
        description="Runs the duplicate check first: likely duplicates in the clinic answer 409 "
        "`possible_duplicate` with the candidates (id, mrn, score, matched fields; best first, "
        'at most 5) in `error.details.candidates`. Send `"confirm_new": true` to register anyway.',
        responses={201: PatientSerializer},
        parameters=[etag_header(201), IDEMPOTENCY_KEY_HEADER],
    )
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        self.confirmed_new = data.pop("confirm_new")
        self.confirm_reason = data.pop("reason", "")
        try:
            patient = services.patient_create(
                actor=caller(request), data=data, confirm_new=self.confirmed_new
            )
        except services.PossibleDuplicate as duplicate:
            # The answer names these patients: the trail says so.
            self.audit_patient_ids = duplicate.patient_ids
            raise
        response = self._patient_response(patient, status.HTTP_201_CREATED)
        response["Location"] = reverse("patient-detail", kwargs={"pk": patient.pk})
        return response

    @extend_schema(
        summary="Update a patient (partial)",
        parameters=[IF_MATCH, etag_header(200)],
        responses={200: PatientSerializer},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        expected_versions = parse_if_match(request.headers.get("If-Match"))
        if expected_versions == set():
            raise PreconditionFailed()
        patient = services.patient_update(
            actor=caller(request),
            patient=patient,
            data=serializer.validated_data,
            expected_versions=expected_versions,
        )
        return self._patient_response(patient)

    @extend_schema(
        summary="Archive a patient",
        description="Soft delete: hidden from lists, detail and search; admins can restore it.",
        parameters=[IF_MATCH],
        responses={204: None},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        expected_versions = parse_if_match(request.headers.get("If-Match"))
        if expected_versions == set():
            raise PreconditionFailed()
        services.patient_archive(
            actor=caller(request), patient=patient, expected_versions=expected_versions
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Restore an archived patient",
        request=None,
        responses={200: PatientSerializer},
        parameters=[etag_header(200)],
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        patient = selectors.patient_get(user=request.user, pk=pk, include_archived=True)
        return self._patient_response(
            services.patient_restore(actor=caller(request), patient=patient)
        )

    @extend_schema(
        summary="Ranked patient search",
        parameters=[INCLUDE_ARCHIVED],
        responses={200: PatientSerializer(many=True)},
    )
    @action(detail=False, methods=["get"], pagination_class=RankedPagination)
    @bounded
    def search(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(
        summary="Patient summary with document counts",
        parameters=[INCLUDE_ARCHIVED],
        responses={200: PatientSummarySerializer},
    )
    @action(detail=True, methods=["get"])
    def summary(self, request: Request, pk: str) -> Response:
        patient = self.get_object()
        summary = {
            "patient": patient,
            "documents": selectors.patient_documents_summary(patient=patient),
        }
        return Response(PatientSummarySerializer(summary).data)

    @extend_schema(
        summary="Versions of a patient",
        parameters=[INCLUDE_ARCHIVED],
        responses={200: PatientHistoryEntrySerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        history = selectors.patient_history(
            user=request.user, pk=pk, include_archived=self.include_archived()
        )
        records = self.paginate_queryset(history) or []
        entries = selectors.patient_history_entries(records=list(records), history=history)
        return self.get_paginated_response(PatientHistoryEntrySerializer(entries, many=True).data)

    @extend_schema(
        summary="Likely duplicates of a patient",
        description="The clinic's active patients that score at least "
        "PATIENT_DUPLICATE_THRESHOLD against this one, best first, at most 5.",
        responses={200: DuplicateCandidateSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def duplicates(self, request: Request, pk: str) -> Response:
        patient = self.get_object()
        candidates = selectors.patient_duplicates(patient=patient)
        self.audit_patient_ids = [patient.pk, *(c.patient.pk for c in candidates)]
        rows = [candidate.as_details() for candidate in candidates]
        return Response(DuplicateCandidateSerializer(rows, many=True).data)

    @extend_schema(
        summary="Merge another patient's record into this one",
        description="In one transaction: the source's documents move here, the `take` fields "
        "are copied from the source, the source's MRN becomes an alias of this patient (found "
        "by `search`, `/search/` and `mrn`), and the source is archived with `merged_into`. "
        "`If-Match` is checked against this patient. Undo with `unmerge`.",
        request=PatientMergeInputSerializer,
        responses={200: PatientMergeSerializer},
        parameters=[IF_MATCH, etag_header(200)],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def merge(self, request: Request, pk: str) -> Response:
        incoming = PatientMergeInputSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        target = self.get_object()
        source = selectors.patient_get(user=request.user, pk=incoming.validated_data["source"])
        self.audit_patient_ids = [target.pk, source.pk]
        expected_versions = parse_if_match(request.headers.get("If-Match"))
        merge = services.patient_merge(
            actor=caller(request),
            target=target,
            source=source,
            take=incoming.validated_data["take"],
            expected_versions=expected_versions,
        )
        response = Response(PatientMergeSerializer(merge).data)
        response["ETag"] = etag(merge.target)
        return response

    @extend_schema(
        summary="Undo a merge into this patient",
        description="Restores the source, moves back exactly the documents the merge moved "
        "(documents added here since stay), gives this patient back the fields the merge took "
        "(unless edited since) and drops the alias. 409 `merge_changed` with `details.reason` "
        "when a moved record changed so that undoing is unsafe.",
        request=PatientUnmergeInputSerializer,
        responses={200: PatientMergeSerializer},
        parameters=[etag_header(200)],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def unmerge(self, request: Request, pk: str) -> Response:
        incoming = PatientUnmergeInputSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        target = self.get_object()
        merge = selectors.patient_merge_in_force(
            user=request.user, target=target, source_pk=incoming.validated_data["source"]
        )
        self.audit_patient_ids = [target.pk, merge.source_id]
        merge = services.patient_unmerge(actor=caller(request), merge=merge)
        response = Response(PatientMergeSerializer(merge).data)
        response["ETag"] = etag(merge.target)
        return response
