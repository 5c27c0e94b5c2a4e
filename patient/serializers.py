from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

from accounts.models import User
from document.serializers import PatientDocumentsSummarySerializer
from patient import validators
from patient.models import Gender, Patient, PatientMerge, age_on
from patient.selectors import HISTORY_TYPES
from patient.services import TAKEABLE_FIELDS
from pms.representation import DeclaredOutput

# --- input ------------------------------------------------------------------------------------


class PatientWriteSerializer(serializers.Serializer):
    """The client-writable fields, shared by create and update. An explicit allow-list:
    organization, MRN sequence, created_by, version and the archive fields are not in it."""

    full_name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text="Stored in E.164. Needs a leading + and country code unless the server has a "
        "default region.",
    )
    date_of_birth = serializers.DateField(required=False)
    age = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=validators.MAX_AGE,
        help_text="Instead of date_of_birth: stores 1 January of the birth year, marked as an "
        "estimate.",
    )
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    address = serializers.CharField(required=False, allow_blank=True, max_length=500)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10000)

    def validate_full_name(self, value: str) -> str:
        return validators.normalize_full_name(value)

    def validate_phone(self, value: str) -> str:
        return validators.normalize_phone(value)

    def validate_date_of_birth(self, value: Any) -> Any:
        validators.validate_date_of_birth(value)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "age" in attrs and "date_of_birth" in attrs:
            raise serializers.ValidationError(
                {"age": ["Give either date_of_birth or age, not both."]}
            )
        return attrs


class PatientCreateSerializer(PatientWriteSerializer):
    mrn = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
                "Use letters, digits and . _ / - only.",
            )
        ],
        help_text="Medical record number, unique in the organization. Generated when omitted.",
    )

    confirm_new = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Register the patient even though the duplicate check found likely "
        "duplicates (the 409 `possible_duplicate`). Recorded in the audit trail.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Why a likely duplicate is registered anyway (with confirm_new). Stored in the "
        "audit trail, which holds no patient data: do not write any here.",
    )

    def validate_mrn(self, value: str) -> str:
        return validators.normalize_mrn(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "age" not in attrs and "date_of_birth" not in attrs:
            raise serializers.ValidationError(
                {"date_of_birth": ["Give date_of_birth or, when unknown, age."]}
            )
        return attrs


class PatientUpdateSerializer(PatientWriteSerializer):
    """PATCH body: any subset of the writable fields; the MRN is fixed once assigned."""


class IncludeArchivedQuerySerializer(serializers.Serializer):
    include_archived = serializers.BooleanField(required=False, default=False)


# --- output -----------------------------------------------------------------------------------


class UserRefSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username"]


class PatientSerializer(serializers.ModelSerializer[Patient]):
    age = serializers.IntegerField(
        read_only=True, help_text="Completed years, from the birth date."
    )
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    # Not `format: email` in the schema: the address is optional and then an empty string.
    email = serializers.CharField(read_only=True, help_text="Email address; empty when unknown.")

    class Meta:
        model = Patient
        fields = [
            "id",
            "mrn",
            "full_name",
            "email",
            "phone",
            "date_of_birth",
            "birth_date_estimated",
            "age",
            "gender",
            "address",
            "notes",
            "is_active",
            "archived_at",
            "created_by",
            "created_at",
            "updated_at",
            "version",
            "merged_into",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "merged_into": {"help_text": "Set once merged into another patient: their id."}
        }


# Lists and details send these rows (pms/representation.py); a write returns DRF's rendering.
PATIENT_OUTPUT = DeclaredOutput(
    PatientSerializer,
    computed={"age": lambda row: age_on(row["date_of_birth"], timezone.localdate())},
)


class PatientSummarySerializer(serializers.Serializer):
    patient = PatientSerializer()
    documents = PatientDocumentsSummarySerializer()


class PatientHistoryEntrySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.ChoiceField(choices=sorted(HISTORY_TYPES.values()))
    user = UserRefSerializer(allow_null=True, help_text="Who made the change, when known.")
    changed_fields = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the fields this version changed."
    )
    reason = serializers.CharField(
        help_text='Why, when the change says: e.g. "merge of 12", "merged into 7".'
    )


class DuplicateCandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    score = serializers.FloatField(help_text="0-1; at least PATIENT_DUPLICATE_THRESHOLD.")
    matched = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the fields that matched."
    )


class PatientMergeInputSerializer(serializers.Serializer):
    # A serializer's own `source` attribute is popped by DRF's metaclass: the name is free.
    source = serializers.IntegerField(  # type: ignore[assignment]
        help_text="The patient merged into this one (archived)."
    )
    take = serializers.ListField(
        child=serializers.ChoiceField(choices=TAKEABLE_FIELDS),
        required=False,
        default=list,
        max_length=len(TAKEABLE_FIELDS),
        help_text="Fields whose value the source's record gives the target (date_of_birth "
        "brings its estimate flag); unmerge gives the target its own values back.",
    )


class PatientUnmergeInputSerializer(serializers.Serializer):
    source = serializers.IntegerField(  # type: ignore[assignment]
        help_text="The patient to take out of this one again."
    )


class PatientMergeSerializer(serializers.ModelSerializer[PatientMerge]):
    moved_document_ids = serializers.SerializerMethodField()
    taken_fields = serializers.SerializerMethodField()
    merged_by = UserRefSerializer(read_only=True, allow_null=True)
    undone_by = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = PatientMerge
        fields = [
            "id",
            "target",
            "source",
            "moved_document_ids",
            "taken_fields",
            "merged_by",
            "merged_at",
            "undone_by",
            "undone_at",
        ]
        read_only_fields = fields

    def get_moved_document_ids(self, merge: PatientMerge) -> list[int]:
        return [entry["id"] for entry in merge.moved_documents]

    def get_taken_fields(self, merge: PatientMerge) -> list[str]:
        return sorted(merge.taken_fields)
