"""Every read costs a constant number of queries, whatever the page size."""

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Organization, User
from patient.models import Patient
from tests.factories import PatientFactory
from tests.patient.conftest import LIST_URL, SEARCH_URL, detail_url


@pytest.fixture
def many_patients(organization: Organization, clinician: User, staff_user: User) -> None:
    # Two different creators, so a per-row lookup of created_by would show up as extra queries.
    for creator in (clinician, staff_user):
        PatientFactory.create_batch(
            55, organization=organization, created_by=creator, full_name="John Many"
        )
    PatientFactory.create_batch(10, organization=organization, full_name="Other Person")


@pytest.mark.usefixtures("many_patients")
@pytest.mark.parametrize("page_size", [1, 20, 100])
@pytest.mark.parametrize(
    "query",
    ["", "?search=john&gender=U&age_min=0&age_max=150&ordering=-created_at", "?ordering=age"],
)
def test_the_list_costs_three_queries(
    as_clinician: APIClient, django_assert_num_queries: Any, page_size: int, query: str
) -> None:
    separator = "&" if query else "?"
    # The caller comes from the cache. 1. COUNT(*) of the page set, 2. the page with created_by
    # joined, 3. the audit INSERT (one row naming every patient shown).
    with django_assert_num_queries(3):
        response = as_clinician.get(f"{LIST_URL}{query}{separator}page_size={page_size}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size


@pytest.mark.usefixtures("many_patients")
@pytest.mark.parametrize("page_size", [1, 20, 100])
def test_search_costs_three_queries(
    as_clinician: APIClient, django_assert_num_queries: Any, bounded_queries: int, page_size: int
) -> None:
    # On SQLite: 1. the ranked ids (count and page), 2. the page with created_by joined, 3. the
    # audit INSERT. On PostgreSQL the 110 "John Many"s are the nearest names and prove every
    # page (patient/search.py): their three statements (their threshold, their read, the
    # threshold set back), then the capped count of the candidates but the fuzzy ones, under
    # the cap, so 1. that of every candidate, 2. the page ranked among the nearest names and
    # 3. the audit INSERT; and the statement timeout's (bounded_queries).
    nearest_names = 4 if connection.vendor == "postgresql" else 0
    with django_assert_num_queries(3 + bounded_queries + nearest_names):
        response = as_clinician.get(f"{SEARCH_URL}?q=john many&gender=U&page_size={page_size}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size


def test_the_detail_costs_two_queries(
    as_clinician: APIClient, patient: Patient, django_assert_num_queries: Any
) -> None:
    # 1. the patient with created_by joined, 2. the audit INSERT.
    with django_assert_num_queries(2):
        response = as_clinician.get(detail_url(patient))

    assert response.status_code == 200


def test_the_summary_costs_four_queries(
    as_clinician: APIClient, patient: Patient, django_assert_num_queries: Any
) -> None:
    # 1. the patient, 2. the document counts and bytes by type, 3. the latest documents,
    # 4. the audit INSERT.
    with django_assert_num_queries(4):
        response = as_clinician.get(detail_url(patient, "summary/"))

    assert response.status_code == 200


@pytest.mark.parametrize("page_size", [1, 20, 100])
def test_history_costs_five_queries(
    as_clinician: APIClient,
    patient: Patient,
    clinician: User,
    staff_user: User,
    django_assert_num_queries: Any,
    page_size: int,
) -> None:
    for number in range(120):
        patient.notes = f"visit {number}"
        patient._history_user = clinician if number % 2 else staff_user
        patient.save()

    # 1. the patient (scope check), 2. COUNT(*) of its versions, 3. the page of versions with
    # their authors joined, 4. the version before the page, 5. the audit INSERT.
    with django_assert_num_queries(5):
        response = as_clinician.get(f"{detail_url(patient, 'history/')}?page_size={page_size}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size
