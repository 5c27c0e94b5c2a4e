from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import CLINICAL_ROLES
from audit.mixins import AuditedViewMixin
from document import serializers
from document.filters import DocumentFilter
from document.models import Document
from document.selectors import document_get, document_stats, narrow_documents
from document.services import (
    document_archive,
    document_confirm,
    document_create,
    document_create_with_upload,
    document_open_local_download,
    document_sign_download,
    document_sign_upload,
    document_store_local_upload,
    document_update,
)
from document.storage import (
    GrantExpired,
    LocalStorage,
    SignedRequest,
    get_local_storage,
    read_in_chunks,
)
from patient.selectors import patient_get
from pms.bounded import bounded
from pms.idempotency import IDEMPOTENCY_KEY_HEADER, idempotent
from pms.permissions import HasActionRole
from pms.renderers import ORJSONRenderer
from pms.schema import ErrorEnvelopeSerializer
from pms.scoping import ScopedViewMixin


def _conflict(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


def _signed_upload_body(
    request: Request, document: Document, signed: SignedRequest
) -> dict[str, Any]:
    return {
        "document_id": document.pk,
        # Local URLs are paths on this app; GCS URLs are already absolute and stay as they are.
        "upload_url": request.build_absolute_uri(signed.url),
        "method": signed.method,
        "headers": signed.headers,
        "expires_at": signed.expires_at,
    }


class SignUploadView(AuditedViewMixin, APIView):
    """Step 1 of an upload: create a pending document and get a signed PUT for its file.

    Send the file with the returned method, URL and headers (exactly), then call confirm.
    """

    audit_resource = "document"
    patient_data = True
    audit_action = "sign_upload"
    error_responses = ("409", "422")

    @extend_schema(
        request=serializers.DocumentCreateSerializer,
        responses={201: serializers.SignedUploadSerializer},
        parameters=[IDEMPOTENCY_KEY_HEADER],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        incoming = serializers.DocumentCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        patient = patient_get(user=request.user, pk=incoming.validated_data["patient_id"])
        self.audit_patient_ids = [patient.pk]
        document, signed = document_create_with_upload(
            actor=request.user, patient=patient, data=incoming.validated_data
        )
        body = serializers.SignedUploadSerializer(_signed_upload_body(request, document, signed))
        return Response(body.data, status=status.HTTP_201_CREATED)


class ConfirmUploadView(AuditedViewMixin, APIView):
    """Step 3 of an upload: check the stored file and mark the document uploaded.

    Size, type and checksum are read from storage. Idempotent.
    """

    audit_resource = "document"
    patient_data = True
    audit_action = "confirm"

    @extend_schema(
        request=serializers.DocumentConfirmSerializer,
        responses={
            200: serializers.DocumentSerializer,
            400: _conflict(
                "Larger than declared, empty, of another type, or content that is not of the "
                "declared type (`content_mismatch`): the object is removed."
            ),
            409: _conflict("The file is not in storage yet (`upload_missing`)."),
        },
    )
    def post(self, request: Request) -> Response:
        incoming = serializers.DocumentConfirmSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        document = document_get(user=request.user, pk=incoming.validated_data["document_id"])
        self.audit_patient_ids = [document.patient_id]
        document = document_confirm(document=document)
        return Response(serializers.DocumentSerializer(document).data)


class DocumentViewSet(AuditedViewMixin, ScopedViewMixin, viewsets.GenericViewSet):
    """A clinic's documents (metadata). Files move through signed URLs, never through here."""

    audit_resource = "document"
    patient_data = True
    audit_patient_key = "patient"

    permission_classes = [IsAuthenticated, HasActionRole]
    # Staff handle uploads and metadata but neither read files nor archive records.
    action_roles = {"destroy": CLINICAL_ROLES, "download_url": CLINICAL_ROLES}
    filterset_class = DocumentFilter
    scoped_model = Document
    queryset = Document.objects.none()  # for the schema; requests use get_queryset()

    @property
    def error_responses(self) -> tuple[str, ...]:
        return ("409", "422") if self.action == "create" else ()

    def narrow_queryset(self, queryset: Any) -> Any:
        return narrow_documents(queryset)

    def get_object(self) -> Document:
        return document_get(user=self.request.user, pk=self.kwargs["pk"])

    def get_serializer_class(self) -> Any:
        if self.action == "create":
            return serializers.DocumentCreateSerializer
        if self.action == "partial_update":
            return serializers.DocumentUpdateSerializer
        return serializers.DocumentSerializer

    def _page(self, queryset: Any) -> Response:
        page = self.paginate_queryset(serializers.DOCUMENT_OUTPUT.values(queryset)) or []
        return self.get_paginated_response(serializers.DOCUMENT_OUTPUT.rows(page))

    @extend_schema(responses=serializers.DocumentSerializer(many=True))
    def list(self, request: Request) -> Response:
        return self._page(self.filter_queryset(self.get_queryset()))

    @extend_schema(
        responses={201: serializers.DocumentSerializer}, parameters=[IDEMPOTENCY_KEY_HEADER]
    )
    @idempotent
    def create(self, request: Request) -> Response:
        """Create a pending document (metadata only); get its upload URL with `upload_url`."""
        incoming = serializers.DocumentCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        patient = patient_get(user=request.user, pk=incoming.validated_data["patient_id"])
        document = document_create(
            actor=request.user, patient=patient, data=incoming.validated_data
        )
        return Response(
            serializers.DocumentSerializer(document).data, status=status.HTTP_201_CREATED
        )

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(serializers.DocumentSerializer(self.get_object()).data)

    @extend_schema(responses=serializers.DocumentSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        incoming = serializers.DocumentUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        document = document_update(document=self.get_object(), data=incoming.validated_data)
        return Response(serializers.DocumentSerializer(document).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        """Archive the document; its file is kept in storage."""
        document = self.get_object()
        self.audit_patient_ids = [document.patient_id]
        document_archive(document=document)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={
            200: serializers.DownloadUrlSerializer,
            409: _conflict(
                "The file has not been uploaded yet (`not_uploaded`), has not passed its malware "
                "scan yet (`scan_pending`), or was found infected (`document_quarantined`)."
            ),
        }
    )
    @action(detail=True, methods=["get"])
    def download_url(self, request: Request, pk: str) -> Response:
        """A short-lived URL that downloads the file as an attachment."""
        document = self.get_object()
        self.audit_patient_ids = [document.patient_id]
        signed = document_sign_download(document=document)
        body = serializers.DownloadUrlSerializer(
            {
                "download_url": request.build_absolute_uri(signed.url),
                "expires_at": signed.expires_at,
                "filename": document.filename,
                "content_type": document.content_type,
            }
        )
        return Response(body.data)

    @extend_schema(
        request=None,
        responses={
            200: serializers.SignedUploadSerializer,
            409: _conflict("The file is already uploaded (`already_uploaded`)."),
        },
    )
    @action(detail=True, methods=["post"])
    def upload_url(self, request: Request, pk: str) -> Response:
        """A fresh signed PUT for a pending document (after `create`, or when one expired)."""
        document = self.get_object()
        self.audit_patient_ids = [document.patient_id]
        signed = document_sign_upload(document=document)
        body = serializers.SignedUploadSerializer(_signed_upload_body(request, document, signed))
        return Response(body.data)

    @extend_schema(
        parameters=[serializers.DocumentByPatientQuerySerializer],
        responses=serializers.DocumentSerializer(many=True),
    )
    @action(detail=False, methods=["get"], filter_backends=[])
    def by_patient(self, request: Request) -> Response:
        """One patient's documents, newest first."""
        query = serializers.DocumentByPatientQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient = patient_get(user=request.user, pk=query.validated_data["patient_id"])
        return self._page(self.get_queryset().filter(patient=patient))

    @extend_schema(
        parameters=[serializers.DocumentStatsQuerySerializer],
        responses=serializers.DocumentStatsSerializer,
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    @bounded(timeout_setting="STATS_STATEMENT_TIMEOUT_MS")
    def stats(self, request: Request) -> Response:
        """Counts and bytes of the organization's (or one patient's) active documents."""
        query = serializers.DocumentStatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        patient_id = query.validated_data.get("patient")
        patient = patient_get(user=request.user, pk=patient_id) if patient_id else None
        self.audit_patient_ids = [patient.pk] if patient else []
        stats = document_stats(user=request.user, patient=patient)
        return Response(serializers.DocumentStatsSerializer(stats).data)


# --- the local storage backend's file endpoints -------------------------------------------------


class FirstRendererNegotiation(BaseContentNegotiation):
    """File endpoints answer bytes (or an error envelope) whatever the client's Accept says."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


def _local_storage() -> LocalStorage:
    try:
        return get_local_storage()
    except LookupError:
        # Only the local backend serves files; with GCS these URLs do not exist.
        raise exceptions.NotFound() from None


def _upload_body_types() -> dict[str, Any]:
    return {
        content_type: OpenApiTypes.BINARY
        for content_type in settings.DOCUMENT_ALLOWED_CONTENT_TYPES
    }


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"
    default_detail = "Send the file with a Content-Length header."


_FILE_URL_REFUSED = OpenApiResponse(
    ErrorEnvelopeSerializer,
    description="The link has expired (`signature_expired`) or is not valid (`invalid_signature`).",
)
_FILE_URL_GONE = OpenApiResponse(
    ErrorEnvelopeSerializer,
    description="The document or its patient was archived after the link was issued "
    "(`document_archived`): checked on every use.",
)


class LocalFileView(AuditedViewMixin, APIView):
    """Upload (PUT) and download (GET) of a file with the `local` storage backend.

    Authorised only by the signed, expiring token in the URL (no JWT): take the URL from
    sign-upload or download_url. An expired or altered URL answers 403; once the document or
    its patient is archived, 410.
    """

    audit_resource = "document"
    patient_data = True

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    renderer_classes = [ORJSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    def get_audit_action(self, request: Request) -> str:
        return "document.file_upload" if request.method == "PUT" else "document.file_download"

    def get_audit_path(self, request: Request) -> str:
        # The token in the URL is a bearer credential: it never goes into the trail.
        return reverse("document-file", kwargs={"token": "-"})

    @staticmethod
    def _grant(load: Any, token: str) -> Any:
        try:
            return load(token)
        except GrantExpired:
            raise exceptions.PermissionDenied(
                "This link has expired; request a new one.", code="signature_expired"
            ) from None
        except (signing.BadSignature, ValueError, KeyError, TypeError):
            raise exceptions.PermissionDenied(
                "This link is not valid.", code="invalid_signature"
            ) from None

    @extend_schema(
        operation_id="document_files_upload",
        auth=[],
        request=_upload_body_types(),
        responses={
            200: OpenApiResponse(description="Stored. Now call `POST /api/document/confirm/`."),
            403: _FILE_URL_REFUSED,
            409: _conflict(
                "The document was confirmed, before or while this body arrived (`upload_closed`)."
            ),
            410: _FILE_URL_GONE,
            411: OpenApiResponse(ErrorEnvelopeSerializer, description="Content-Length missing."),
        },
    )
    def put(self, request: Request, token: str) -> Response:
        storage = _local_storage()
        grant = self._grant(storage.upload_grant, token)
        sent_type = request.META.get("CONTENT_TYPE", "").strip().lower()
        if sent_type != grant.content_type:
            raise exceptions.UnsupportedMediaType(sent_type or "(none)")
        length_header = request.META.get("CONTENT_LENGTH") or ""
        if not length_header.isdigit():
            raise LengthRequired
        length = int(length_header)
        stored = document_store_local_upload(
            grant=grant, chunks=read_in_chunks(request.stream, length), length=length
        )
        return Response(headers={"ETag": f'"{stored.checksum}"'})

    @extend_schema(
        operation_id="document_files_download",
        auth=[],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            403: _FILE_URL_REFUSED,
            404: OpenApiResponse(
                ErrorEnvelopeSerializer, description="The file is not in storage."
            ),
            410: _FILE_URL_GONE,
        },
    )
    def get(self, request: Request, token: str) -> FileResponse:
        storage = _local_storage()
        grant = self._grant(storage.download_grant, token)
        handle = document_open_local_download(grant=grant)
        response = FileResponse(
            handle, as_attachment=True, filename=grant.filename, content_type=grant.content_type
        )
        # Should a browser render it anyway, it runs nothing and loads nothing.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
