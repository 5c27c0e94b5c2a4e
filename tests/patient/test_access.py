"""Organization scoping and roles on every path, with the three actors: a clinician and a staff
user of the owning clinic, and a clinician of another clinic (who must get 404, never 403)."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, Role, User
from patient import selectors
from patient.models import Patient
from tests.factories import PatientFactory, UserFactory
from tests.patient.conftest import LIST_URL, SEARCH_URL, detail_url, error_code, ids

READ_PATHS = ["", "summary/", "history/"]


@pytest.fixture
def actor(request: pytest.FixtureRequest, client_for: Callable[[User], APIClient]) -> APIClient:
    return client_for(request.getfixturevalue(request.param))


@pytest.mark.parametrize("suffix", READ_PATHS)
@pytest.mark.parametrize(
    ("actor", "status"),
    [("clinician", 200), ("staff_user", 200), ("foreign_clinician", 404)],
    indirect=["actor"],
)
def test_reads_of_a_patient_are_scoped_to_the_organization(
    actor: APIClient, patient: Patient, suffix: str, status: int
) -> None:
    response = actor.get(detail_url(patient, suffix))

    assert response.status_code == status
    if status == 404:
        assert error_code(response) == "not_found"


@pytest.mark.parametrize(
    ("actor", "status"),
    [("clinician", 200), ("staff_user", 200), ("foreign_clinician", 404)],
    indirect=["actor"],
)
def test_updates_are_scoped_to_the_organization(
    actor: APIClient, patient: Patient, status: int
) -> None:
    response = actor.patch(detail_url(patient), {"notes": "seen"}, format="json")

    assert response.status_code == status
    patient.refresh_from_db()
    assert (patient.notes == "seen") is (status == 200)


@pytest.mark.parametrize(
    ("actor", "status", "code"),
    [
        ("org_admin", 204, None),
        ("clinician", 204, None),
        ("staff_user", 403, "permission_denied"),
        ("foreign_clinician", 404, "not_found"),
    ],
    indirect=["actor"],
)
def test_archiving_needs_an_admin_or_clinician_of_the_organization(
    actor: APIClient, patient: Patient, status: int, code: str | None
) -> None:
    response = actor.delete(detail_url(patient))

    assert response.status_code == status
    if code:
        assert error_code(response) == code
    patient.refresh_from_db()
    assert patient.is_active is (status != 204)


@pytest.fixture
def archived(organization: Organization) -> Patient:
    return PatientFactory.create(organization=organization, full_name="Archie Ved", is_active=False)


@pytest.fixture
def foreign_admin(other_organization: Organization) -> User:
    return UserFactory.create(username="dave", role=Role.ADMIN, organization=other_organization)


@pytest.mark.parametrize(
    ("actor", "status", "code"),
    [
        ("org_admin", 200, None),
        ("clinician", 403, "permission_denied"),
        ("staff_user", 403, "permission_denied"),
        ("foreign_admin", 404, "not_found"),
    ],
    indirect=["actor"],
)
def test_only_an_admin_of_the_organization_restores(
    actor: APIClient, archived: Patient, status: int, code: str | None
) -> None:
    response = actor.post(detail_url(archived, "restore/"))

    assert response.status_code == status
    if code:
        assert error_code(response) == code
    archived.refresh_from_db()
    assert archived.is_active is (status == 200)


@pytest.mark.parametrize("url", [LIST_URL, SEARCH_URL + "?q=john"])
@pytest.mark.parametrize(
    ("actor", "sees_it"),
    [("clinician", True), ("staff_user", True), ("foreign_clinician", False)],
    indirect=["actor"],
)
def test_lists_and_search_show_only_the_organizations_patients(
    actor: APIClient, patient: Patient, foreign_patient: Patient, url: str, sees_it: bool
) -> None:
    response = actor.get(url)

    assert response.status_code == 200
    listed = ids(response)
    assert (patient.pk in listed) is sees_it
    assert (foreign_patient.pk in listed) is not sees_it


@pytest.mark.parametrize("url", [LIST_URL, SEARCH_URL + "?q=archie"])
@pytest.mark.parametrize("actor", ["org_admin", "clinician", "staff_user"], indirect=True)
def test_archived_patients_vanish_from_lists_and_search(
    actor: APIClient, archived: Patient, url: str
) -> None:
    response = actor.get(url)

    assert response.status_code == 200
    assert archived.pk not in ids(response)


@pytest.mark.parametrize("suffix", READ_PATHS)
@pytest.mark.parametrize("actor", ["org_admin", "clinician", "staff_user"], indirect=True)
def test_an_archived_patient_is_not_found_without_include_archived(
    actor: APIClient, archived: Patient, suffix: str
) -> None:
    response = actor.get(detail_url(archived, suffix))

    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("suffix", READ_PATHS)
def test_an_admin_reads_an_archived_patient_with_include_archived(
    as_admin: APIClient, archived: Patient, suffix: str
) -> None:
    response = as_admin.get(detail_url(archived, suffix) + "?include_archived=true")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "url", [LIST_URL + "?include_archived=true", SEARCH_URL + "?q=archie&include_archived=true"]
)
def test_an_admin_lists_archived_patients_with_include_archived(
    as_admin: APIClient, archived: Patient, url: str
) -> None:
    response = as_admin.get(url)

    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()["results"]}
    assert rows[archived.pk]["is_active"] is False


def test_include_archived_does_not_reach_another_organization(
    client_for: Callable[[User], APIClient], foreign_admin: User, archived: Patient
) -> None:
    client = client_for(foreign_admin)

    detail = client.get(detail_url(archived) + "?include_archived=true")
    listing = client.get(LIST_URL + "?include_archived=true")

    assert detail.status_code == 404
    assert archived.pk not in ids(listing)


@pytest.mark.parametrize(
    "path", ["", "search/?q=john&", "{id}/?", "{id}/summary/?", "{id}/history/?"]
)
@pytest.mark.parametrize("actor", ["clinician", "staff_user"], indirect=True)
def test_include_archived_is_forbidden_to_non_admins(
    actor: APIClient, patient: Patient, path: str
) -> None:
    url = LIST_URL + path.format(id=patient.pk)
    separator = "" if url.endswith(("?", "&")) else "?"

    response = actor.get(f"{url}{separator}include_archived=true")

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"


def test_an_unreadable_include_archived_is_a_validation_error(as_admin: APIClient) -> None:
    response = as_admin.get(LIST_URL + "?include_archived=maybe")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert "include_archived" in response.json()["error"]["details"]


def test_a_superuser_without_organization_sees_every_organization(
    client_for: Callable[[User], APIClient], patient: Patient, foreign_patient: Patient
) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "x-very-long-pass-1")
    client = client_for(root)

    listed = ids(client.get(LIST_URL))

    assert {patient.pk, foreign_patient.pk} <= set(listed)
    assert client.get(detail_url(foreign_patient)).status_code == 200


def test_a_user_without_organization_sees_nothing(patient: Patient) -> None:
    # The database refuses to store one (tests/pms/test_scoping.py); the rule holds anyway.
    loner = UserFactory.build(organization=None, role=Role.ADMIN)

    assert not selectors.patient_list(user=loner, include_archived=True).exists()


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "summary/"),
        ("get", "history/"),
        ("post", "restore/"),
    ],
)
def test_anonymous_clients_are_refused_on_every_detail_path(
    api_client: APIClient, patient: Patient, method: str, suffix: str
) -> None:
    response = getattr(api_client, method)(detail_url(patient, suffix))

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


@pytest.mark.parametrize("url", [LIST_URL, SEARCH_URL + "?q=john"])
def test_anonymous_clients_cannot_list_or_search(db: Any, api_client: APIClient, url: str) -> None:
    response = api_client.get(url)

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
