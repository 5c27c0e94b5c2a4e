"""The performance work the benchmark measures: bounded pagination, per-organization patient
counters, cached organization stats and the user throttle's answer."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Organization, User
from document.stats_cache import cached_stats, invalidate_stats
from patient.models import Patient, PatientCount
from patient.selectors import patient_list
from pms import pagination
from pms.throttles import UserRateThrottle
from tests.factories import DocumentFactory, PatientFactory

PATIENTS_URL = "/api/patient/patients/"
STATS_URL = "/api/document/documents/stats/"


@pytest.fixture
def as_clinician(client_for: Callable[[User], APIClient], clinician: User) -> APIClient:
    return client_for(clinician)


@pytest.fixture
def as_admin(client_for: Callable[[User], APIClient], org_admin: User) -> APIClient:
    return client_for(org_admin)


@pytest.fixture
def patients(organization: Organization, clinician: User) -> list[Patient]:
    return PatientFactory.create_batch(
        25, organization=organization, created_by=clinician, full_name="Ada Example"
    )


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


# --- pagination --------------------------------------------------------------------------------


def test_pages_read_through_the_deferred_join_are_the_plain_ordering(
    as_clinician: APIClient, clinician: User, patients: list[Patient]
) -> None:
    for ordering in ("", "&ordering=full_name", "&ordering=-age"):
        expected = [p.pk for p in patient_list(user=clinician)]
        if ordering:
            expected = [
                row["id"]
                for row in as_clinician.get(f"{PATIENTS_URL}?page_size=100{ordering}").json()[
                    "results"
                ]
            ]
        seen = []
        for page in range(1, 8):
            response = as_clinician.get(f"{PATIENTS_URL}?page_size=4&page={page}{ordering}")
            assert response.status_code == 200
            seen += [row["id"] for row in response.json()["results"]]
            if response.json()["next"] is None:
                break

        assert seen == expected


def test_a_deep_page_costs_the_queries_of_the_first(
    as_clinician: APIClient, patients: list[Patient], django_assert_num_queries: Any
) -> None:
    # 1. the count, 2. the page (ids from the ordering index, rows by id, in one statement),
    # 3. the audit INSERT.
    for page in (1, 6):
        with django_assert_num_queries(3):
            response = as_clinician.get(f"{PATIENTS_URL}?search=ada&page_size=4&page={page}")
        assert response.status_code == 200


@pytest.mark.parametrize("count_limit", [1000, 7])
def test_ranked_search_pages_are_the_ranking_cut_in_pages(
    as_clinician: APIClient,
    clinician: User,
    patients: list[Patient],
    monkeypatch: Any,
    count_limit: int,
) -> None:
    # Too few names near "ada" to prove a page from the nearest names: one ranking pass gives
    # the count and the pages; past `count_limit` ids (7: pages 2 and later of 4) the pages
    # come from the ranked query itself. Either way: the same sequence.
    monkeypatch.setattr(pagination, "COUNT_LIMIT", count_limit)
    PatientFactory.create_batch(3, organization=clinician.organization, full_name="Adam Other")
    everything = as_clinician.get(f"{PATIENTS_URL}search/?q=ada&page_size=100").json()
    seen = []
    for page in range(1, 10):
        response = as_clinician.get(f"{PATIENTS_URL}search/?q=ada&page_size=4&page={page}")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == min(28, count_limit)
        assert response["X-Count-Exact"] == ("true" if count_limit > 28 else "false")
        seen += [row["id"] for row in body["results"]]
        if body["next"] is None:
            break

    assert len(seen) == 28
    assert seen == [row["id"] for row in everything["results"]]


def test_a_page_past_the_deepest_served_is_a_400(
    as_clinician: APIClient, patients: list[Patient], monkeypatch: Any
) -> None:
    monkeypatch.setattr(pagination, "MAX_RESULTS", 10)

    last = as_clinician.get(f"{PATIENTS_URL}?page_size=5&page=2")
    refused = as_clinician.get(f"{PATIENTS_URL}?page_size=5&page=3")

    assert last.status_code == 200
    assert last.json()["next"] is None
    assert refused.status_code == 400
    assert error_code(refused) == "validation_error"
    assert "page" in refused.json()["error"]["details"]


def test_a_large_filtered_count_stops_at_the_limit_and_says_so(
    as_clinician: APIClient, patients: list[Patient], monkeypatch: Any
) -> None:
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 10)

    capped = as_clinician.get(f"{PATIENTS_URL}?search=ada&page_size=10")
    beyond = as_clinician.get(f"{PATIENTS_URL}?search=ada&page_size=10&page=3")
    exact = as_clinician.get(f"{PATIENTS_URL}?search=nobody")

    assert capped.json()["count"] == 10
    assert capped["X-Count-Exact"] == "false"
    assert capped.json()["next"] is not None
    # Pages past the count are still served while rows exist.
    assert len(beyond.json()["results"]) == 5
    assert beyond.json()["next"] is None
    assert exact.json()["count"] == 0
    assert exact["X-Count-Exact"] == "true"


def test_a_page_past_the_last_row_is_still_a_404(
    as_clinician: APIClient, patients: list[Patient]
) -> None:
    response = as_clinician.get(f"{PATIENTS_URL}?page_size=10&page=4")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


# --- per-organization patient counters (PostgreSQL) ---------------------------------------------


def counted(organization: Organization) -> tuple[int, int]:
    row = PatientCount.objects.get(organization=organization)
    return row.active, row.archived


@pytest.mark.usefixtures("postgres_only")
def test_the_counters_follow_every_insert_archive_restore_and_delete(
    as_admin: APIClient,
    organization: Organization,
    other_organization: Organization,
    patients: list[Patient],
) -> None:
    PatientFactory.create_batch(3, organization=other_organization)

    assert counted(organization) == (25, 0)
    assert counted(other_organization) == (3, 0)
    assert as_admin.delete(f"{PATIENTS_URL}{patients[0].pk}/").status_code == 204
    assert as_admin.delete(f"{PATIENTS_URL}{patients[1].pk}/").status_code == 204
    assert counted(organization) == (23, 2)
    assert as_admin.post(f"{PATIENTS_URL}{patients[0].pk}/restore/").status_code == 200
    assert counted(organization) == (24, 1)
    Patient.objects.filter(pk=patients[2].pk).delete()
    assert counted(organization) == (23, 1)
    assert counted(other_organization) == (3, 0)


@pytest.mark.usefixtures("postgres_only")
def test_an_unfiltered_list_takes_its_exact_count_from_the_counters(
    as_admin: APIClient, patients: list[Patient], monkeypatch: Any, django_assert_num_queries: Any
) -> None:
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 10)
    as_admin.delete(f"{PATIENTS_URL}{patients[0].pk}/")

    # 1. the organization's counters, 2. the page, 3. the audit INSERT.
    with django_assert_num_queries(3):
        active = as_admin.get(f"{PATIENTS_URL}?ordering=full_name")
    everyone = as_admin.get(f"{PATIENTS_URL}?include_archived=true")

    assert active.json()["count"] == 24
    assert active["X-Count-Exact"] == "true"
    assert everyone.json()["count"] == 25


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only")
def test_truncating_the_patients_empties_the_counters(
    patients: list[Patient], organization: Organization
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE patient_patient CASCADE")

    assert not PatientCount.objects.exists()


# --- cached organization stats -----------------------------------------------------------------


def test_organization_stats_are_served_from_the_cache_until_a_write_commits(
    as_clinician: APIClient,
    patients: list[Patient],
    django_assert_num_queries: Any,
    bounded_queries: int,
    django_capture_on_commit_callbacks: Any,
) -> None:
    DocumentFactory.create(patient=patients[0], uploaded=True, size_bytes=10)
    first = as_clinician.get(STATS_URL).json()
    # Only the audit INSERT (and on PostgreSQL the statement timeout's statements): the aggregate is
    # not run again.
    with django_assert_num_queries(1 + bounded_queries):
        cached = as_clinician.get(STATS_URL).json()
    with django_capture_on_commit_callbacks(execute=True):
        DocumentFactory.create(patient=patients[1], uploaded=True, size_bytes=5)
    after_upload = as_clinician.get(STATS_URL).json()
    with django_capture_on_commit_callbacks(execute=True):
        as_clinician.delete(f"{PATIENTS_URL}{patients[1].pk}/")
    after_archive = as_clinician.get(STATS_URL).json()

    assert first == cached
    assert first["total"] == 1
    assert (after_upload["total"], after_upload["total_bytes"]) == (2, 15)
    assert (after_archive["total"], after_archive["total_bytes"]) == (1, 10)


def test_stats_computed_before_a_write_are_not_served_after_it(
    organization: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    def compute_while_a_write_commits() -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            invalidate_stats(organization.pk)
        return {"total": "stale"}

    stale = cached_stats(organization.pk, compute_while_a_write_commits)
    fresh = cached_stats(organization.pk, lambda: {"total": "fresh"})
    again = cached_stats(organization.pk, lambda: {"total": "not used"})

    assert stale == {"total": "stale"}
    assert fresh == {"total": "fresh"}
    assert again == {"total": "fresh"}


# --- the user throttle -------------------------------------------------------------------------


def test_the_user_throttle_counts_requests_in_a_window_and_says_when_to_retry(
    as_clinician: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UserRateThrottle, "rate", "3/min", raising=False)

    statuses = [as_clinician.get(STATS_URL).status_code for _ in range(4)]
    refused = as_clinician.get(STATS_URL)

    assert statuses == [200, 200, 200, 429]
    assert error_code(refused) == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60


def test_the_user_throttle_starts_each_window_afresh_and_counts_each_user_alone(
    client_for: Callable[[User], APIClient],
    clinician: User,
    org_admin: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(UserRateThrottle, "rate", "2/min", raising=False)
    now = [6_000_000.0]  # a window boundary: 100,000 minutes
    monkeypatch.setattr(UserRateThrottle, "timer", lambda self: now[0])
    first, second = client_for(clinician), client_for(org_admin)

    in_window = [first.get(STATS_URL).status_code for _ in range(3)]
    other_user = second.get(STATS_URL).status_code
    now[0] += 59.5
    refused = first.get(STATS_URL)
    now[0] += 0.5
    next_window = [first.get(STATS_URL).status_code for _ in range(3)]

    assert in_window == [200, 200, 429]
    assert other_user == 200
    assert refused.status_code == 429
    # Retry-After is the end of the window, rounded up by DRF.
    assert refused["Retry-After"] == "1"
    assert next_window == [200, 200, 429]


def test_the_user_throttle_count_is_shared_by_every_instance(
    clinician: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two app instances are two throttle objects over the one cache (Redis in production).
    monkeypatch.setattr(UserRateThrottle, "rate", "3/min", raising=False)
    request = type("Request", (), {"user": clinician})()
    instances = [UserRateThrottle(), UserRateThrottle()]

    answers = [instances[k % 2].allow_request(request, None) for k in range(5)]

    assert answers == [True, True, True, False, False]
