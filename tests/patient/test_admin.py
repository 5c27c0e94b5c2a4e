from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import Organization, Role, User
from patient.models import Patient
from tests.factories import PatientFactory, UserFactory

CHANGELIST = "/admin/patient/patient/"


@pytest.fixture
def superuser(organization: Organization) -> User:
    return User.objects.create_superuser(
        "super", "super@example.com", "x-very-long-pass-1", organization=None
    )


@pytest.fixture
def admin_client_for(client: Client) -> Any:
    def login(user: User) -> Client:
        client.force_login(user)
        return client

    return login


def test_the_changelist_shows_mrn_name_gender_age_and_organization(
    admin_client_for: Any, superuser: User, patient: Patient
) -> None:
    response = admin_client_for(superuser).get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    for text in (patient.mrn, "John Doe", "Unknown", str(patient.age), "Northside Clinic"):
        assert text in page


def test_the_changelist_searches_and_filters(
    admin_client_for: Any, superuser: User, organization: Organization
) -> None:
    PatientFactory.create(organization=organization, full_name="Zelda Quest", gender="F")
    PatientFactory.create(organization=organization, full_name="Other Person", gender="M")
    client = admin_client_for(superuser)

    searched = client.get(CHANGELIST, {"q": "zelda"}).content.decode()
    filtered = client.get(CHANGELIST, {"gender__exact": "M"}).content.decode()

    assert "Zelda Quest" in searched
    assert "Other Person" not in searched
    assert "Other Person" in filtered
    assert "Zelda Quest" not in filtered


def test_adding_in_the_admin_generates_the_mrn_and_normalizes_input(
    admin_client_for: Any, superuser: User, organization: Organization
) -> None:
    response = admin_client_for(superuser).post(
        CHANGELIST + "add/",
        {
            "organization": organization.pk,
            "mrn": "",
            "full_name": "  Admin   Added ",
            "email": "",
            "phone": "+1 (202) 555-0143",
            "date_of_birth": "1980-01-02",
            "gender": "F",
            "address": "",
            "notes": "",
            "is_active": "on",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    patient = Patient.objects.get()
    assert patient.mrn == "MRN-000001"
    assert patient.full_name == "Admin Added"
    assert patient.phone == "+12025550143"
    assert patient.created_by == superuser
    assert patient.history.get().history_user == superuser


def test_an_invalid_phone_is_refused_in_the_admin(
    admin_client_for: Any, superuser: User, organization: Organization
) -> None:
    response = admin_client_for(superuser).post(
        CHANGELIST + "add/",
        {
            "organization": organization.pk,
            "full_name": "Bad Phone",
            "phone": "call me",
            "date_of_birth": "1980-01-02",
            "gender": "F",
        },
    )

    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors
    assert not Patient.objects.exists()


def test_editing_in_the_admin_bumps_the_version_and_records_history(
    admin_client_for: Any, superuser: User, patient: Patient
) -> None:
    response = admin_client_for(superuser).post(
        f"{CHANGELIST}{patient.pk}/change/",
        {
            "organization": patient.organization_id,
            "mrn": patient.mrn,
            "full_name": "John Changed",
            "email": patient.email,
            "phone": patient.phone,
            "date_of_birth": patient.date_of_birth.isoformat(),
            "gender": patient.gender,
            "address": "",
            "notes": "",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.full_name, patient.version) == ("John Changed", 2)
    assert patient.history.count() == 2


def test_the_history_page_lists_the_versions(
    admin_client_for: Any, superuser: User, patient: Patient
) -> None:
    patient.notes = "second version"
    patient.save()

    response = admin_client_for(superuser).get(f"{CHANGELIST}{patient.pk}/history/")

    assert response.status_code == 200
    assert [r.version for r in response.context["page_obj"].object_list] == [2, 1]


def test_clinic_staff_in_the_admin_see_only_their_organization(
    admin_client_for: Any,
    organization: Organization,
    patient: Patient,
    foreign_patient: Patient,
) -> None:
    clinic_admin = UserFactory.create(role=Role.ADMIN, organization=organization, is_staff=True)
    clinic_admin.user_permissions.add(*Permission.objects.filter(codename__endswith="_patient"))

    client = admin_client_for(clinic_admin)
    page = client.get(CHANGELIST).content.decode()
    foreign = client.get(f"{CHANGELIST}{foreign_patient.pk}/change/")

    assert patient.mrn in page
    assert "John Foreign" not in page
    assert foreign.status_code == 302  # the admin redirects a missing object to the index
