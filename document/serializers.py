from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from document.models import Document, DocumentType
from document.storage import get_storage
from pms.representation import DeclaredOutput

# Values only, as the patient summary declares them, so the schema has one DocumentTypeEnum.
DOCUMENT_TYPES = DocumentType.values

# --- input ------------------------------------------------------------------------------------


@extend_schema_field(
    {"type": "string", "enum": list(settings.DOCUMENT_ALLOWED_CONTENT_TYPES)},
)
class AllowedContentTypeField(serializers.CharField):
    """Documented as the allow-list configured when the schema is generated."""


class DocumentCreateSerializer(serializers.Serializer):
    """A pending document: what the client declares about the file it will upload."""

    patient_id = serializers.IntegerField(min_value=1)
    document_type = serializers.ChoiceField(choices=DOCUMENT_TYPES)
    filename = serializers.CharField(
        max_length=1024, help_text="Display name only; directories and control characters go."
    )
    content_type = AllowedContentTypeField(max_length=127, help_text="From the allow-list.")
    size_bytes = serializers.IntegerField(min_value=1, help_text="1 to DOCUMENT_MAX_BYTES.")
    title = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="Defaults to the filename."
    )

    def validate_content_type(self, value: str) -> str:
        content_type = value.strip().lower()
        allowed = get_storage().settings.allowed_content_types
        if content_type not in allowed:
            raise serializers.ValidationError(
                f"Unsupported content type. Allowed: {', '.join(allowed)}."
            )
        return content_type

    def validate_size_bytes(self, value: int) -> int:
        limit = get_storage().settings.max_bytes
        if value > limit:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {limit}."
            )
        return value


class DocumentUpdateSerializer(serializers.Serializer):
    """Metadata a user may change; the file, its type and size are fixed at upload."""

    title = serializers.CharField(max_length=255, required=False, allow_blank=True)
    document_type = serializers.ChoiceField(choices=DOCUMENT_TYPES, required=False)
    filename = serializers.CharField(max_length=1024, required=False)


class DocumentConfirmSerializer(serializers.Serializer):
    document_id = serializers.IntegerField(min_value=1)


class DocumentByPatientQuerySerializer(serializers.Serializer):
    patient_id = serializers.IntegerField(min_value=1)


class DocumentStatsQuerySerializer(serializers.Serializer):
    patient = serializers.IntegerField(
        min_value=1, required=False, help_text="Only this patient's documents."
    )


# --- output -----------------------------------------------------------------------------------


class DocumentSerializer(serializers.ModelSerializer):
    document_type = serializers.ChoiceField(choices=DOCUMENT_TYPES, read_only=True)
    patient = serializers.IntegerField(source="patient_id", read_only=True)
    uploaded_by = serializers.IntegerField(source="uploaded_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "patient",
            "document_type",
            "title",
            "filename",
            "content_type",
            "size_bytes",
            "is_uploaded",
            "uploaded_at",
            "checksum",
            "scan_status",
            "scanned_at",
            "scan_finding",
            "uploaded_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


# Lists send these rows (pms/representation.py); a write returns DRF's rendering.
DOCUMENT_OUTPUT = DeclaredOutput(DocumentSerializer)


class SignedUploadSerializer(serializers.Serializer):
    document_id = serializers.IntegerField()
    upload_url = serializers.CharField()
    method = serializers.CharField(help_text='Always "PUT".')
    headers = serializers.DictField(
        child=serializers.CharField(), help_text="Send exactly these headers with the PUT."
    )
    expires_at = serializers.DateTimeField()


class DownloadUrlSerializer(serializers.Serializer):
    download_url = serializers.CharField()
    expires_at = serializers.DateTimeField()
    filename = serializers.CharField()
    content_type = serializers.CharField()


class DocumentTypeCountsSerializer(serializers.Serializer):
    medical_report = serializers.IntegerField()
    lab_result = serializers.IntegerField()
    prescription = serializers.IntegerField()
    imaging = serializers.IntegerField()
    insurance = serializers.IntegerField()
    consent_form = serializers.IntegerField()
    referral = serializers.IntegerField()
    other = serializers.IntegerField()


class DocumentRecentStatsSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Documents created in the last 30 days.")
    uploaded = serializers.IntegerField(help_text="Documents uploaded in the last 30 days.")
    uploaded_bytes = serializers.IntegerField()


class DocumentTotalsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    uploaded = serializers.IntegerField()
    pending = serializers.IntegerField()
    total_bytes = serializers.IntegerField(help_text="Bytes of uploaded documents.")
    by_type = DocumentTypeCountsSerializer()


class DocumentStatsSerializer(DocumentTotalsSerializer):
    last_30_days = DocumentRecentStatsSerializer()


class DocumentBriefSerializer(serializers.Serializer):
    """A recent document in the summary (reads dict keys or model attributes)."""

    id = serializers.IntegerField()
    document_type = serializers.ChoiceField(choices=DOCUMENT_TYPES)
    title = serializers.CharField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size_bytes = serializers.IntegerField()
    is_uploaded = serializers.BooleanField()
    uploaded_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class PatientDocumentsSummarySerializer(DocumentTotalsSerializer):
    """The `documents` block of the patient summary."""

    latest = DocumentBriefSerializer(many=True)
