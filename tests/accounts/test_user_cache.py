"""The user behind an access token is cached between requests; every change to the user or
their organization must still be seen by the very next request."""

import pickle

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import authentication
from accounts.authentication import authenticated_user
from accounts.models import Role
from tests.factories import PatientFactory

ME_URL = "/api/accounts/me/"
PATIENTS_URL = "/api/patient/patients/"


@pytest.fixture
def patient(organization):
    return PatientFactory.create(organization=organization)


def user_queries(client: APIClient) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME_URL).status_code == 200
    return sum('FROM "accounts_user"' in q["sql"] for q in queries.captured_queries)


def test_the_second_request_reads_the_user_from_the_cache(client_for, clinician):
    client = client_for(clinician)
    cache.clear()

    assert user_queries(client) == 1
    assert user_queries(client) == 0


def test_the_cache_can_be_turned_off(client_for, clinician, monkeypatch):
    monkeypatch.setattr(authentication, "USER_CACHE_SECONDS", 0)
    client = client_for(clinician)
    cache.clear()

    assert user_queries(client) == 1
    assert user_queries(client) == 1


def test_a_deactivated_user_is_refused_at_the_next_request(client_for, clinician):
    client = client_for(clinician)
    assert client.get(ME_URL).status_code == 200

    clinician.is_active = False
    clinician.save()

    assert client.get(ME_URL).status_code == 401


def test_a_deleted_user_is_refused_at_the_next_request(client_for, clinician):
    client = client_for(clinician)
    assert client.get(ME_URL).status_code == 200

    clinician.delete()

    assert client.get(ME_URL).status_code == 401


def test_a_role_change_applies_at_the_next_request(client_for, staff_user, patient):
    client = client_for(staff_user)
    assert client.delete(f"{PATIENTS_URL}{patient.pk}/").status_code == 403

    staff_user.role = Role.CLINICIAN
    staff_user.save()

    assert client.delete(f"{PATIENTS_URL}{patient.pk}/").status_code == 204


def test_a_move_to_another_organization_applies_at_the_next_request(
    client_for, clinician, patient, other_organization
):
    client = client_for(clinician)
    assert client.get(f"{PATIENTS_URL}{patient.pk}/").status_code == 200

    clinician.organization = other_organization
    clinician.save()

    assert client.get(f"{PATIENTS_URL}{patient.pk}/").status_code == 404


def test_an_organization_change_reaches_its_users(client_for, clinician, organization):
    client = client_for(clinician)
    client.get(ME_URL)

    organization.name = "Renamed Clinic"
    organization.save()

    assert authenticated_user(clinician.pk).organization.name == "Renamed Clinic"


def test_the_password_hash_is_never_cached(client_for, clinician):
    client_for(clinician).get(ME_URL)

    cached = cache.get(f"auth-user:{clinician.pk}")
    assert cached is not None
    assert cached.pk == clinician.pk
    assert "password" not in cached.__dict__
    assert clinician.password.encode() not in pickle.dumps(cached)
