"""The Django admin for documents: read-mostly, filterable, scoped for non-superusers."""

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import Organization, Role
from document.models import Document
from patient.models import Patient
from tests.factories import DocumentFactory, UserFactory

CHANGELIST = "/admin/document/document/"


@pytest.fixture
def superuser_client(db: None) -> Client:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True, organization=None))
    return client


@pytest.fixture
def clinic_admin_client(organization: Organization) -> Client:
    user = UserFactory.create(role=Role.ADMIN, organization=organization, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="document", codename__in=["view_document", "change_document"]
        )
    )
    client = Client()
    client.force_login(user)
    return client


def listed(response: Any) -> set[int]:
    return {document.pk for document in response.context["cl"].result_list}


def test_superusers_filter_by_type_status_and_organization(
    superuser_client: Client, patient: Patient, foreign_patient: Patient
) -> None:
    lab = DocumentFactory.create(patient=patient, document_type="lab_result", uploaded=True)
    pending = DocumentFactory.create(patient=patient)
    foreign = DocumentFactory.create(patient=foreign_patient)

    assert listed(superuser_client.get(CHANGELIST)) == {lab.pk, pending.pk, foreign.pk}
    assert listed(superuser_client.get(f"{CHANGELIST}?document_type__exact=lab_result")) == {lab.pk}
    assert listed(superuser_client.get(f"{CHANGELIST}?is_uploaded__exact=0")) == {
        pending.pk,
        foreign.pk,
    }
    by_org = superuser_client.get(
        f"{CHANGELIST}?organization__id__exact={foreign_patient.organization_id}"
    )
    assert listed(by_org) == {foreign.pk}


def test_clinic_admins_see_their_organization_only(
    clinic_admin_client: Client, patient: Patient, foreign_patient: Patient
) -> None:
    mine = DocumentFactory.create(patient=patient)
    foreign = DocumentFactory.create(patient=foreign_patient)

    assert listed(clinic_admin_client.get(CHANGELIST)) == {mine.pk}
    assert clinic_admin_client.get(f"{CHANGELIST}{foreign.pk}/change/").status_code == 302


def test_only_labels_are_editable_and_nothing_is_added_or_deleted(
    superuser_client: Client, patient: Patient
) -> None:
    document = DocumentFactory.create(patient=patient, title="Old", uploaded=True)

    form = superuser_client.get(f"{CHANGELIST}{document.pk}/change/")
    saved = superuser_client.post(
        f"{CHANGELIST}{document.pk}/change/",
        {"title": "New", "document_type": "referral", "object_name": "elsewhere"},
    )

    assert set(form.context["adminform"].form.fields) == {"title", "document_type"}
    assert saved.status_code == 302
    document.refresh_from_db()
    assert (document.title, document.document_type) == ("New", "referral")
    assert document.object_name != "elsewhere"
    assert superuser_client.get(f"{CHANGELIST}add/").status_code == 403
    assert superuser_client.get(f"{CHANGELIST}{document.pk}/delete/").status_code == 403
    assert Document.objects.filter(pk=document.pk).exists()
