"""Patients in the Django admin: a clinic admin registers, edits, archives and restores their
clinic's patients through the same services as the API, and every page is on record
(pms/admin.py). Nothing is hard-deleted, and history is read-only: a revert could rewrite a
patient's clinic, MRN or version behind the services' back."""

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import CLINICAL_ROLES, User
from document.models import Document
from document.selectors import narrow_documents
from document.services import document_sign_download
from patient import services, validators
from patient.models import Patient
from pms.admin import AuditedAdmin
from pms.exceptions import ApplicationError
from pms.permissions import user_has_role

EDITABLE_FIELDS = (
    "mrn",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "gender",
    "address",
    "notes",
)
READONLY_FIELDS = (
    "birth_date_estimated",
    "is_active",
    "archived_at",
    "version",
    "created_by",
    "created_at",
    "updated_at",
)


class PatientAdminForm(forms.ModelForm):
    """The API's normalization also applies to edits made in the admin."""

    # Set by PatientAdmin.get_form: the clinic the MRN must be unique in.
    organization_id: Any = None
    # Typed numbers may carry spaces and punctuation; the stored E.164 form is shorter.
    phone = forms.CharField(required=False, max_length=32)

    class Meta:
        model = Patient
        fields = list(EDITABLE_FIELDS)

    # Registration only: the duplicate check's "register anyway" (the API's confirm_new).
    confirm_new = forms.BooleanField(
        required=False,
        label="Create anyway",
        help_text="Register this patient even though likely duplicates were found.",
    )
    reason = forms.CharField(
        required=False,
        max_length=200,
        help_text="Why (kept in the audit trail, which holds no patient data: write none here).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The ids of the likely duplicates this form was refused for.
        self.duplicate_ids: list[int] = []
        if not self.instance._state.adding:
            del self.fields["confirm_new"], self.fields["reason"]
        if "mrn" in self.fields:
            self.fields["mrn"].required = False
            self.fields["mrn"].help_text = "Leave empty to generate the next number."

    def clean_full_name(self) -> str:
        return validators.normalize_full_name(self.cleaned_data["full_name"])

    def clean_phone(self) -> str:
        return validators.normalize_phone(self.cleaned_data["phone"])

    def clean_mrn(self) -> str:
        mrn = validators.normalize_mrn(self.cleaned_data.get("mrn") or "")
        taken = Patient.objects.filter(organization_id=self.organization_id, mrn=mrn)
        if mrn and taken.exists():
            raise forms.ValidationError(services.MRN_TAKEN)
        return mrn

    def clean_date_of_birth(self) -> Any:
        value = self.cleaned_data["date_of_birth"]
        validators.validate_date_of_birth(value)
        return value

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        checkable = {"full_name", "date_of_birth"} <= set(cleaned) and not self.errors
        if self.instance._state.adding and checkable and not cleaned.get("confirm_new"):
            data = {name: cleaned[name] for name in EDITABLE_FIELDS if name in cleaned}
            candidates = services.duplicates_of_new(organization_id=self.organization_id, data=data)
            if candidates:
                self.duplicate_ids = [candidate.patient.pk for candidate in candidates]
                listed = "; ".join(
                    f"{c.patient.mrn} (score {c.score:.2f}: {', '.join(c.matched)})"
                    for c in candidates
                )
                raise forms.ValidationError(
                    f"This patient may already be registered: {listed}. Check these records, "
                    'or tick "Create anyway".'
                )
        return cleaned


class PatientDocumentInline(admin.TabularInline):
    """The patient's documents, read-only; files download through a fresh signed URL."""

    model = Document
    extra = 0
    can_delete = False
    show_change_link = True
    columns = (
        "title",
        "document_type",
        "content_type",
        "size_bytes",
        "is_uploaded",
        "uploaded_at",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        documents = super().get_queryset(request).visible_to(request.user)  # type: ignore[attr-defined]
        return narrow_documents(documents)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        may_download = user_has_role(request.user, CLINICAL_ROLES)
        return [*self.columns, "file"] if may_download else list(self.columns)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="File")
    def file(self, document: Document) -> str:
        if not document.is_uploaded:
            return "not uploaded"
        url = reverse(
            "admin:patient_patient_document_download", args=[document.patient_id, document.pk]
        )
        return format_html('<a href="{}">Download</a>', url)


def _take_state(target: Patient, source: Patient) -> None:
    """The admin goes on with its own instance (log entry, redirect): give it the saved row."""
    for field in Patient._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False


@admin.register(Patient)
class PatientAdmin(AuditedAdmin, SimpleHistoryAdmin):
    form = PatientAdminForm
    audit_resource = "patient"
    list_display = ["mrn", "full_name", "gender", "age", "organization", "is_active"]
    list_filter = ["gender", "is_active", "birth_date_estimated", "organization"]
    search_fields = ["mrn", "full_name", "email", "phone"]
    list_select_related = ["organization"]
    ordering = ["organization", "full_name"]
    history_list_display = ["version", "is_active"]
    inlines = [PatientDocumentInline]
    actions = ["archive", "restore"]

    def audit_patient_ids(self, objects: Any) -> list[Any]:
        return [patient.pk for patient in objects]

    @admin.display(description="Age")
    def age(self, patient: Patient) -> int:
        return patient.age

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        user: Any = request.user
        form.organization_id = obj.organization_id if obj else user.organization_id  # type: ignore[attr-defined]
        return form

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        registration = ("confirm_new", "reason") if obj is None else ()
        return [*EDITABLE_FIELDS, *registration, *READONLY_FIELDS]

    def audit_refused_form_patients(self, form: Any) -> list[Any]:
        return list(getattr(form, "duplicate_ids", []))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The MRN is fixed once assigned, as in the API.
        return ("mrn", *READONLY_FIELDS) if obj is not None else READONLY_FIELDS

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else []

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Patients are registered into the registering user's clinic; platform operators have none.
        user: Any = request.user
        return user.organization_id is not None and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An archived patient is read-only until restored.
        return super().has_change_permission(request, obj) and (obj is None or obj.is_active)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        actor = cast(User, request.user)
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data}
            saved = services.patient_update(actor=actor, patient=obj, data=data)
        else:
            data = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS}
            confirm_new = bool(form.cleaned_data.get("confirm_new"))
            saved = services.patient_create(actor=actor, data=data, confirm_new=confirm_new)
            request._audit_created = saved  # type: ignore[attr-defined]
            if confirm_new:
                reason = form.cleaned_data.get("reason", "")
                request._audit_details = {"confirm_new": True, "reason": reason}  # type: ignore[attr-defined]
        _take_state(obj, saved)

    @admin.action(description="Archive selected patients", permissions=["change"])
    def archive(self, request: HttpRequest, queryset: Any) -> None:
        archived = [
            services.patient_archive(actor=cast(User, request.user), patient=patient).pk
            for patient in queryset.filter(is_active=True)
        ]
        self.audit(request, "destroy", status_code=200, patient_ids=archived)
        self.message_user(request, f"{len(archived)} patient(s) archived.", messages.SUCCESS)

    @admin.action(description="Restore selected patients", permissions=["change"])
    def restore(self, request: HttpRequest, queryset: Any) -> None:
        archived = queryset.filter(is_active=False)
        # A merged record comes back only by unmerge, with its documents (services).
        restored = [
            services.patient_restore(actor=cast(User, request.user), patient=patient).pk
            for patient in archived.filter(merged_into__isnull=True)
        ]
        self.audit(request, "restore", status_code=200, patient_ids=restored)
        self.message_user(request, f"{len(restored)} patient(s) restored.", messages.SUCCESS)
        merged = archived.filter(merged_into__isnull=False).count()
        if merged:
            self.message_user(
                request,
                f"{merged} merged patient(s) not restored: undo their merge instead.",
                messages.WARNING,
            )

    # --- history: scoped, on record, never reverted ------------------------------------------

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> Any:
        with self.audit_refusal(request, "history", object_id):
            self.visible_object(request, object_id)
            if request.method != "GET":
                raise PermissionDenied("History is read-only.")
            response = super().history_form_view(request, object_id, version_id, extra_context)
        self.audit(
            request,
            "history",
            status_code=response.status_code,
            resource_id=object_id,
            patient_ids=[object_id],
            details={"version": version_id},
        )
        return response

    # --- document downloads ------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        download = path(
            "<path:object_id>/documents/<int:document_id>/download/",
            self.admin_site.admin_view(self.download_document),
            name="patient_patient_document_download",
        )
        return [download, *super().get_urls()]

    def download_document(
        self, request: HttpRequest, object_id: str, document_id: int
    ) -> HttpResponse:
        """A fresh signed URL for one of the patient's documents, as the API's download_url."""
        with self.audit_refusal(request, "download_url", document_id, resource="document"):
            patient = self.visible_object(request, object_id)
            if not user_has_role(request.user, CLINICAL_ROLES):
                raise PermissionDenied("Your role does not allow downloads.")
            documents = narrow_documents(Document.objects.visible_to(request.user))
            document = documents.filter(patient=patient, pk=document_id).first()
            if document is None:
                raise Http404("Not found.")
        try:
            signed = document_sign_download(document=document)
            status_code, target = 302, request.build_absolute_uri(signed.url)
        except ApplicationError as error:  # not uploaded (and, later, not scanned)
            self.message_user(request, str(error.detail), messages.ERROR)
            status_code = error.status_code
            target = reverse("admin:patient_patient_change", args=[patient.pk])
        self.audit(
            request,
            "download_url",
            status_code=status_code,
            resource="document",
            resource_id=document_id,
            patient_ids=[patient.pk],
        )
        return HttpResponseRedirect(target)
