"""The Django admin for documents: read-mostly, filterable, scoped for clinic admins, on record."""

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from document.models import Document
from patient.models import Patient
from tests.factories import DocumentFactory

CHANGELIST = "/admin/document/document/"


@pytest.fixture
def superuser_client(admin_client_for: Any, platform_operator: User) -> Client:
    return admin_client_for(platform_operator)


@pytest.fixture
def clinic_admin_client(admin_client_for: Any, clinic_admin: User) -> Client:
    return admin_client_for(clinic_admin)


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

    page = clinic_admin_client.get(CHANGELIST)

    assert listed(page) == {mine.pk}
    assert "Southside" not in page.content.decode()  # no clinic filter or column
    assert clinic_admin_client.get(f"{CHANGELIST}{foreign.pk}/change/").status_code == 404
    events = AuditEvent.objects.filter(source="admin").order_by("id")
    assert [(e.action, e.status_code, e.patient_ids) for e in events] == [
        ("document.list", 200, [patient.pk]),
        ("document.retrieve", 404, []),
    ]


def test_clinic_admins_archive_documents_through_the_service_and_never_delete(
    clinic_admin_client: Client, patient: Patient
) -> None:
    document = DocumentFactory.create(patient=patient, uploaded=True)

    archive = clinic_admin_client.post(
        CHANGELIST, {"action": "archive", "_selected_action": [document.pk]}
    )
    delete = clinic_admin_client.post(f"{CHANGELIST}{document.pk}/delete/", {"post": "yes"})

    assert (archive.status_code, delete.status_code) == (302, 403)
    document.refresh_from_db()
    assert (document.is_active, document.archived_at is not None) == (False, True)
    event = AuditEvent.objects.get(action="document.destroy", status_code=200)
    assert (event.source, event.patient_ids, event.details["documents"]) == (
        "admin",
        [patient.pk],
        [document.pk],
    )


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
