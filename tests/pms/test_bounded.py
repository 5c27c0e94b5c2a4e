"""Expensive requests are bounded (pms/bounded.py): a per-user concurrency limit and, on
PostgreSQL, a statement timeout that answers 503 query_timeout."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Organization, User
from audit.models import AuditEvent
from document import views as document_views
from fhir import views as fhir_views
from pms.bounded import concurrency_slot
from tests.factories import PatientFactory
from tests.fhir.conftest import fhir_get
from tests.reliability.servers import BASE_DIR

SEARCH_URL = "/api/patient/patients/search/"
STATS_URL = "/api/document/documents/stats/"


@contextmanager
def in_flight(user: User, count: int) -> Iterator[None]:
    """`count` of the user's expensive requests in flight (as another instance would hold them)."""
    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(concurrency_slot(user))
        yield


@pytest.mark.parametrize(("url", "params"), [(SEARCH_URL, {"q": "john"}), (STATS_URL, {})])
def test_a_user_past_the_concurrency_limit_gets_429_with_retry_after(
    settings: Any, as_clinician: APIClient, clinician: User, url: str, params: dict[str, str]
) -> None:
    settings.EXPENSIVE_CONCURRENCY_PER_USER = 2
    settings.EXPENSIVE_STATEMENT_TIMEOUT_MS = settings.STATS_STATEMENT_TIMEOUT_MS = 2500
    with in_flight(clinician, 2):
        refused = as_clinician.get(url, params)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_concurrent_requests"
    # A slot frees when a request ends, within the statement timeout: 2.5 s rounded up.
    assert refused["Retry-After"] == "3"
    event = AuditEvent.objects.get(status_code=429)
    assert (event.actor_id, event.details["error"]) == (
        clinician.pk,
        "too_many_concurrent_requests",
    )


# A limit of 0 turns the limit off.
@pytest.mark.parametrize(("limit", "held"), [(2, 1), (0, 5)])
def test_a_free_slot_lets_the_request_run_and_is_given_back(
    settings: Any, as_clinician: APIClient, clinician: User, limit: int, held: int
) -> None:
    settings.EXPENSIVE_CONCURRENCY_PER_USER = limit
    with in_flight(clinician, held):
        assert as_clinician.get(STATS_URL).status_code == 200
        # The request gave its slot back: one more still fits beside the ones held.
        assert as_clinician.get(STATS_URL).status_code == 200


def test_the_limit_is_per_user(
    settings: Any, clinician: User, staff_user: User, client_for: Callable[[User], APIClient]
) -> None:
    settings.EXPENSIVE_CONCURRENCY_PER_USER = 1
    with in_flight(clinician, 1):
        assert client_for(clinician).get(STATS_URL).status_code == 429
        assert client_for(staff_user).get(STATS_URL).status_code == 200


def test_cheap_requests_are_not_limited(
    settings: Any, as_clinician: APIClient, clinician: User, organization: Organization
) -> None:
    patient = PatientFactory.create(organization=organization)
    settings.EXPENSIVE_CONCURRENCY_PER_USER = 1
    with in_flight(clinician, 1):
        response = as_clinician.get(f"/api/patient/patients/{patient.pk}/")

    assert response.status_code == 200


def test_the_fhir_search_answers_429_as_an_operation_outcome(
    settings: Any, as_clinician: APIClient, clinician: User
) -> None:
    settings.EXPENSIVE_CONCURRENCY_PER_USER = 1
    with in_flight(clinician, 1):
        refused = fhir_get(as_clinician, "/fhir/R4/Patient")

    assert refused.status_code == 429
    assert refused.json()["issue"][0]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1


# --- the statement timeout (PostgreSQL) ---------------------------------------------------------


@pytest.fixture
def slow_stats(monkeypatch: pytest.MonkeyPatch) -> None:
    """Document stats whose query takes a second."""

    def sleep(**kwargs: Any) -> dict[str, Any]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1)")
        raise AssertionError("the statement timeout did not cancel the query")

    monkeypatch.setattr(document_views, "document_stats", sleep)


def shown(name: str) -> str:
    """The session's current value of PostgreSQL setting `name`."""
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return str(cursor.fetchone()[0])


def statement_timeout() -> str:
    return shown("statement_timeout")


def parallel_workers() -> str:
    return shown("max_parallel_workers_per_gather")


@pytest.mark.usefixtures("postgres_only", "slow_stats")
def test_a_query_past_the_statement_timeout_answers_503_query_timeout(
    settings: Any, as_clinician: APIClient, clinician: User
) -> None:
    # Document stats are a request class of their own; the searches' timeout is not theirs.
    settings.STATS_STATEMENT_TIMEOUT_MS = 50
    settings.EXPENSIVE_STATEMENT_TIMEOUT_MS = 60_000

    response = as_clinician.get(STATS_URL)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "query_timeout"
    assert response["Retry-After"] == "1"  # the stats' 50 ms, rounded up; not the searches' 60 s
    # Recorded, after the cancelled transaction, unbounded.
    event = AuditEvent.objects.get(action="document.stats")
    assert (event.actor_id, event.status_code, event.details["error"]) == (
        clinician.pk,
        503,
        "query_timeout",
    )
    assert statement_timeout() == "0"


@pytest.mark.usefixtures("postgres_only", "slow_stats")
def test_the_fhir_search_times_out_as_a_transient_operation_outcome(
    settings: Any, as_clinician: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EXPENSIVE_STATEMENT_TIMEOUT_MS = 50

    def slow_rows(*args: Any, **kwargs: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1)")

    monkeypatch.setattr(fhir_views, "patient_rows", slow_rows)

    response = fhir_get(as_clinician, "/fhir/R4/Patient")

    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "transient"
    assert "Retry-After" in response


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_the_statement_timeout_holds_only_inside_the_expensive_request(
    settings: Any, as_clinician: APIClient
) -> None:
    settings.STATS_STATEMENT_TIMEOUT_MS = 1234
    settings.EXPENSIVE_PARALLEL_WORKERS = 1
    seen: list[tuple[str, str]] = []
    document_stats = document_views.document_stats

    def stats(**kwargs: Any) -> dict[str, Any]:
        seen.append((statement_timeout(), parallel_workers()))
        return document_stats(**kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(document_views, "document_stats", stats)
        assert as_clinician.get(STATS_URL).status_code == 200

    # Autocommit, as in production: SET LOCAL ended with the request's transaction.
    assert seen == [("1234ms", "1")]
    assert (statement_timeout(), parallel_workers()) == ("0", "2")


@pytest.mark.usefixtures("postgres_only")
def test_inside_an_enclosing_transaction_the_timeout_ends_with_the_request(
    settings: Any, as_clinician: APIClient
) -> None:
    # A test's transaction encloses the request: RELEASE SAVEPOINT alone would keep the
    # SET LOCAL for everything after it (a 10,000-row export's teardown was cancelled so).
    settings.STATS_STATEMENT_TIMEOUT_MS = 1234

    assert as_clinician.get(STATS_URL).status_code == 200

    assert (statement_timeout(), parallel_workers()) == ("0", "2")


def test_a_negative_number_of_parallel_workers_stops_the_process() -> None:
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pms.settings.base",
            "EXPENSIVE_PARALLEL_WORKERS": "-1",
        },
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "EXPENSIVE_PARALLEL_WORKERS must be 0 or more" in result.stderr
