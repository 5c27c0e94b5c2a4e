from typing import Any, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Organization, User
from patient import services, validators
from patient.models import Patient
from pms.admin import OrganizationScopedAdminMixin


class PatientAdminForm(forms.ModelForm):
    """The API's normalization also applies to edits made in the admin."""

    # Typed numbers may carry spaces and punctuation; the stored E.164 form is shorter.
    phone = forms.CharField(required=False, max_length=32)

    class Meta:
        model = Patient
        fields = [
            "organization",
            "mrn",
            "full_name",
            "email",
            "phone",
            "date_of_birth",
            "birth_date_estimated",
            "gender",
            "address",
            "notes",
            "is_active",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mrn"].required = False
        self.fields["mrn"].help_text = "Leave empty to generate the next number."

    def clean_full_name(self) -> str:
        return validators.normalize_full_name(self.cleaned_data["full_name"])

    def clean_phone(self) -> str:
        return validators.normalize_phone(self.cleaned_data["phone"])

    def clean_mrn(self) -> str:
        return validators.normalize_mrn(self.cleaned_data.get("mrn") or "")

    def clean_date_of_birth(self) -> Any:
        value = self.cleaned_data["date_of_birth"]
        validators.validate_date_of_birth(value)
        return value


@admin.register(Patient)
class PatientAdmin(OrganizationScopedAdminMixin, SimpleHistoryAdmin):
    form = PatientAdminForm
    list_display = ["mrn", "full_name", "gender", "age", "organization", "is_active"]
    list_filter = ["gender", "is_active", "birth_date_estimated", "organization"]
    search_fields = ["mrn", "full_name", "email", "phone"]
    list_select_related = ["organization"]
    ordering = ["organization", "full_name"]
    readonly_fields = ["version", "created_by", "created_at", "updated_at", "archived_at"]
    history_list_display = ["version", "is_active"]

    @admin.display(description="Age")
    def age(self, patient: Patient) -> int:
        return patient.age

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        user: Any = request.user
        if db_field.name == "organization" and user.organization_id is not None:
            kwargs["queryset"] = Organization.objects.filter(pk=user.organization_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        user: Any = request.user
        if user.organization_id is not None:
            initial.setdefault("organization", user.organization_id)
        return initial

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = cast(User, request.user)
            if not obj.mrn:
                obj.mrn = services.mrn_allocate(obj.organization_id)
        super().save_model(request, obj, form, change)
