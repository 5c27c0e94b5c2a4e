"""Patients in the Django admin, as a clinic admin runs them: through the services, scoped to the
clinic, never deleted, history read-only, every page on record."""

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from document.storage import get_storage
from patient.models import Patient
from patient.services import patient_merge
from tests.factories import DocumentFactory, PatientFactory

CHANGELIST = "/admin/patient/patient/"
PDF = b"%PDF-1.7 admin download"


@pytest.fixture
def alice(admin_client_for: Any, clinic_admin: User) -> Client:
    return admin_client_for(clinic_admin)


def admin_events(action: str) -> Any:
    return AuditEvent.objects.filter(source="admin", action=action)


def form_data(patient: Patient, **changes: str) -> dict[str, str]:
    return {
        "full_name": patient.full_name,
        "email": patient.email,
        "phone": patient.phone,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "gender": patient.gender,
        "address": patient.address,
        "notes": patient.notes,
        # The documents inline (read-only) still sends its management form.
        "documents-TOTAL_FORMS": "0",
        "documents-INITIAL_FORMS": "0",
        **changes,
    }


def test_the_changelist_shows_mrn_name_gender_and_age_and_is_on_record(
    alice: Client, patient: Patient
) -> None:
    response = alice.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    for text in (patient.mrn, "John Doe", "Unknown", str(patient.age)):
        assert text in page
    assert "Northside Clinic" in page  # the header names the clinic
    event = admin_events("patient.list").get()
    assert (event.patient_ids, event.actor_username, event.outcome) == (
        [patient.pk],
        "alice",
        "success",
    )


def test_the_changelist_searches_and_filters(alice: Client, organization: Any) -> None:
    zelda = PatientFactory.create(organization=organization, full_name="Zelda Quest", gender="F")
    PatientFactory.create(organization=organization, full_name="Other Person", gender="M")

    searched = alice.get(CHANGELIST, {"q": "zelda"}).content.decode()
    filtered = alice.get(CHANGELIST, {"gender__exact": "M"}).content.decode()

    assert "Zelda Quest" in searched
    assert "Other Person" not in searched
    assert "Other Person" in filtered
    assert "Zelda Quest" not in filtered
    search = admin_events("patient.search").get()
    assert (search.patient_ids, search.details["params"]) == ([zelda.pk], ["q"])


def test_adding_goes_through_the_service_generates_the_mrn_and_normalizes_input(
    alice: Client, clinic_admin: User
) -> None:
    response = alice.post(
        CHANGELIST + "add/",
        {
            "mrn": "",
            "full_name": "  Admin   Added ",
            "email": "",
            "phone": "+1 (202) 555-0143",
            "date_of_birth": "1980-01-02",
            "gender": "F",
            "address": "",
            "notes": "",
        },
    )

    assert response.status_code == 302
    patient = Patient.objects.get()
    assert patient.mrn == "MRN-000001"
    assert patient.full_name == "Admin Added"
    assert patient.phone == "+12025550143"
    assert patient.organization_id == clinic_admin.organization_id
    assert patient.created_by == clinic_admin
    assert patient.history.get().history_user == clinic_admin
    created = admin_events("patient.create").get()
    assert (created.patient_ids, created.status_code) == ([patient.pk], 201)


def test_a_taken_mrn_and_an_invalid_phone_are_form_errors(alice: Client, patient: Patient) -> None:
    response = alice.post(
        CHANGELIST + "add/",
        {"mrn": patient.mrn, "full_name": "Bad", "phone": "call me", "date_of_birth": "1980-01-02"},
    )

    assert response.status_code == 200
    assert {"mrn", "phone"} <= set(response.context["adminform"].form.errors)
    assert Patient.objects.count() == 1
    assert admin_events("patient.create").get().status_code == 400


def test_editing_bumps_the_version_records_history_and_the_event(
    alice: Client, clinic_admin: User, patient: Patient
) -> None:
    page = alice.get(f"{CHANGELIST}{patient.pk}/change/")
    response = alice.post(
        f"{CHANGELIST}{patient.pk}/change/", form_data(patient, full_name="John Changed")
    )

    assert page.status_code == 200
    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.full_name, patient.version) == ("John Changed", 2)
    assert patient.history.first().history_user == clinic_admin
    assert admin_events("patient.retrieve").get().patient_ids == [patient.pk]
    assert admin_events("patient.partial_update").get().patient_ids == [patient.pk]


def test_the_mrn_clinic_and_version_cannot_be_posted(alice: Client, patient: Patient) -> None:
    mrn, organization_id = patient.mrn, patient.organization_id

    alice.post(
        f"{CHANGELIST}{patient.pk}/change/",
        form_data(patient, mrn="HIJACK", organization="999", version="77", notes="x"),
    )

    patient.refresh_from_db()
    assert (patient.mrn, patient.organization_id, patient.version, patient.notes) == (
        mrn,
        organization_id,
        2,
        "x",
    )


def test_archive_and_restore_are_actions_through_the_services(
    alice: Client, patient: Patient
) -> None:
    archive = alice.post(CHANGELIST, {"action": "archive", "_selected_action": [patient.pk]})
    patient.refresh_from_db()
    archived = (patient.is_active, patient.archived_at is not None, patient.version)
    restore = alice.post(CHANGELIST, {"action": "restore", "_selected_action": [patient.pk]})
    patient.refresh_from_db()

    assert (archive.status_code, restore.status_code) == (302, 302)
    assert archived == (False, True, 2)
    assert (patient.is_active, patient.archived_at, patient.version) == (True, None, 3)
    assert admin_events("patient.destroy").get().patient_ids == [patient.pk]
    assert admin_events("patient.restore").get().patient_ids == [patient.pk]


def test_the_restore_action_leaves_a_merged_record_to_unmerge(
    alice: Client, patient: Patient, clinic_admin: User
) -> None:
    source = PatientFactory.create(organization=patient.organization)
    patient_merge(actor=clinic_admin, target=patient, source=source)

    response = alice.post(
        CHANGELIST, {"action": "restore", "_selected_action": [source.pk]}, follow=True
    )

    assert "1 merged patient(s) not restored" in response.content.decode()
    source.refresh_from_db()
    assert (source.is_active, source.merged_into_id) == (False, patient.pk)
    assert admin_events("patient.restore").get().patient_ids == []


def test_no_patient_is_ever_deleted_here(alice: Client, patient: Patient) -> None:
    page = alice.get(CHANGELIST).content.decode()
    single = alice.post(f"{CHANGELIST}{patient.pk}/delete/", {"post": "yes"})
    bulk = alice.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [patient.pk], "post": "yes"}
    )

    assert "delete_selected" not in page
    assert single.status_code == 403
    assert bulk.status_code in (200, 302)  # an unknown action is ignored with a message
    assert Patient.objects.filter(pk=patient.pk, is_active=True).exists()
    assert admin_events("patient.destroy").get().status_code == 403


def test_the_history_is_listed_on_record_and_cannot_be_reverted(
    alice: Client, patient: Patient
) -> None:
    patient.notes = "second version"
    patient.save()
    first = patient.history.order_by("history_id").first()

    listing = alice.get(f"{CHANGELIST}{patient.pk}/history/")
    version = alice.get(f"{CHANGELIST}{patient.pk}/history/{first.history_id}/")
    revert = alice.post(
        f"{CHANGELIST}{patient.pk}/history/{first.history_id}/", form_data(patient, notes="")
    )

    assert listing.status_code == 200
    assert [r.version for r in listing.context["page_obj"].object_list] == [2, 1]
    assert version.status_code == 200
    assert "Revert" not in version.content.decode()
    assert revert.status_code == 403
    patient.refresh_from_db()
    assert (patient.notes, patient.version) == ("second version", 2)
    assert [event.status_code for event in admin_events("patient.history")] == [403, 200, 200]


def test_another_clinics_patient_its_history_and_versions_are_not_found(
    alice: Client, patient: Patient, foreign_patient: Patient
) -> None:
    foreign_version = foreign_patient.history.get().history_id
    page = alice.get(CHANGELIST).content.decode()

    for url in (
        f"{CHANGELIST}{foreign_patient.pk}/change/",
        f"{CHANGELIST}{foreign_patient.pk}/history/",
        f"{CHANGELIST}{foreign_patient.pk}/history/{foreign_version}/",
    ):
        assert alice.get(url).status_code == 404, url
    assert "John Foreign" not in page
    assert "Southside" not in page


def test_the_patient_page_lists_documents_and_downloads_one_on_record(
    alice: Client, patient: Patient, settings: Any, tmp_path: Any
) -> None:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path
    document = DocumentFactory.create(
        patient=patient, title="Blood panel", size_bytes=len(PDF), uploaded=True
    )
    get_storage().write(  # type: ignore[attr-defined]
        document.object_name, [PDF], content_type="application/pdf", max_bytes=len(PDF)
    )
    page = alice.get(f"{CHANGELIST}{patient.pk}/change/").content.decode()
    link = f"{CHANGELIST}{patient.pk}/documents/{document.pk}/download/"

    redirect = alice.get(link)
    file = Client().get(redirect["Location"])

    assert "Blood panel" in page
    assert link in page
    assert redirect.status_code == 302
    assert b"".join(file.streaming_content) == PDF  # type: ignore[attr-defined]
    event = admin_events("document.download_url").get()
    assert (event.resource_id, event.patient_ids, event.outcome) == (
        str(document.pk),
        [patient.pk],
        "success",
    )


def test_a_document_of_another_clinic_cannot_be_downloaded_through_our_patient(
    alice: Client, patient: Patient, foreign_patient: Patient
) -> None:
    foreign = DocumentFactory.create(patient=foreign_patient, uploaded=True)

    response = alice.get(f"{CHANGELIST}{patient.pk}/documents/{foreign.pk}/download/")
    theirs = alice.get(f"{CHANGELIST}{foreign_patient.pk}/documents/{foreign.pk}/download/")

    assert (response.status_code, theirs.status_code) == (404, 404)
    assert [e.status_code for e in admin_events("document.download_url")] == [404, 404]


def test_a_platform_operator_sees_every_clinic_but_registers_no_patient(
    admin_client_for: Any, platform_operator: User, patient: Patient, foreign_patient: Patient
) -> None:
    client = admin_client_for(platform_operator)

    page = client.get(CHANGELIST).content.decode()
    add = client.get(CHANGELIST + "add/")

    assert "John Doe" in page
    assert "John Foreign" in page
    assert add.status_code == 403
