"""`/metrics` (pms/health.py, pms/metrics.py): who may scrape it, and what it counts."""

import os
import subprocess
import sys
from ipaddress import ip_network
from typing import Any

import pytest
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from audit.models import AuditEvent
from pms.celery import TransientError, app
from tests.factories import PatientFactory
from tests.reliability.servers import BASE_DIR

TOKEN = "scrape-token-for-tests"  # noqa: S105
PATIENT_DETAIL_ROUTE = "api/patient/patients/(?P<pk>[^/.]+)/$"


@pytest.fixture
def scrape(settings: Any) -> Any:
    """Scrapes as Prometheus would, with the token; returns {(name, labels): value}."""
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = APIClient().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
        }

    return scrape


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_a_404_when_neither_token_nor_networks_are_set(api_client, settings) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []

    response = api_client.get("/metrics")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", TOKEN, f"Token {TOKEN}"])
def test_metrics_are_refused_without_the_right_bearer_token(
    api_client, settings, authorization
) -> None:
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = api_client.get("/metrics", **headers)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert b"pms_http_requests" not in response.content


@pytest.mark.parametrize(
    ("networks", "token_sent", "expected"),
    [
        (["127.0.0.0/8"], None, 200),
        (["10.0.0.0/8", "::1/128"], None, 404),
        # Both configured: both must hold.
        (["127.0.0.1/32"], TOKEN, 200),
        (["10.0.0.0/8"], TOKEN, 404),
    ],
)
def test_the_network_allow_list_admits_only_its_clients(
    api_client, settings, networks, token_sent, expected
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = [ip_network(network) for network in networks]
    settings.METRICS_TOKEN = TOKEN if token_sent else ""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_sent}"} if token_sent else {}

    response = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)

    assert response.status_code == expected


def test_with_the_token_it_counts_a_request_made_before(api_client, db, scrape) -> None:
    before = scrape()

    assert api_client.get("/healthz").status_code == 200
    after = scrape()

    labels = {"method": "GET", "route": "healthz", "status": "200"}
    assert value(after, "pms_http_requests_total", **labels) == (
        value(before, "pms_http_requests_total", **labels) + 1
    )
    timed = {"method": "GET", "route": "healthz"}
    assert value(after, "pms_http_request_duration_seconds_count", **timed) == (
        value(before, "pms_http_request_duration_seconds_count", **timed) + 1
    )


def test_requests_are_labelled_by_route_template_never_by_path(client_for, clinician, scrape):
    patient = PatientFactory.create(organization=clinician.organization, full_name="Ida Wren")
    client = client_for(clinician)

    assert client.get(f"/api/patient/patients/{patient.pk}/").status_code == 200
    assert client.get("/no/such/page/4711").status_code == 404
    samples = scrape()

    detail = {"method": "GET", "route": PATIENT_DETAIL_ROUTE, "status": "200"}
    assert value(samples, "pms_http_requests_total", **detail) >= 1
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(samples, "pms_http_requests_total", **unmatched) >= 1
    routes = {dict(labels)["route"] for name, labels in samples if name.startswith("pms_http")}
    assert not [route for route in routes if f"patients/{patient.pk}" in route or "4711" in route]


def test_a_made_up_method_is_one_label_value(api_client, db, scrape) -> None:
    api_client.generic("BREW", "/healthz")

    samples = scrape()

    methods = {dict(labels).get("method") for name, labels in samples}
    assert "BREW" not in methods
    assert "other" in methods


def test_database_queries_and_cache_operations_are_timed(api_client, db, scrape) -> None:
    before = scrape()

    assert api_client.get("/readyz").status_code == 200  # one query, a cache set/get/delete
    cache.get_many(["a", "b"])
    after = scrape()

    name = "pms_db_query_duration_seconds_count"
    assert value(after, name, alias="default") > value(before, name, alias="default")
    name = "pms_cache_operation_duration_seconds_count"
    for operation in ("set", "get", "delete", "get_many"):
        assert value(after, name, operation=operation) > value(before, name, operation=operation)


@app.task(name="tests.metrics_ok")
def succeeds() -> None:
    pass


@app.task(name="tests.metrics_fails")
def fails() -> None:
    raise ValueError("not worth retrying")


@app.task(name="tests.metrics_transient", max_retries=2)
def keeps_failing_transiently() -> None:
    raise TransientError("the mail server is away")


def test_task_outcomes_are_counted(db, scrape) -> None:
    before = scrape()

    succeeds.delay()
    fails.delay()
    keeps_failing_transiently.delay()
    after = scrape()

    def grew(task: str, outcome: str) -> float:
        labels = {"task": task, "outcome": outcome}
        name = "pms_celery_tasks_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tests.metrics_ok", "success") == 1
    assert grew("tests.metrics_fails", "failure") == 1
    assert grew("tests.metrics_transient", "retry") == 2  # then it gives up
    assert grew("tests.metrics_transient", "failure") == 1


def test_the_endpoint_is_neither_audited_nor_in_the_schema(api_client, db, scrape) -> None:
    scrape()

    assert not AuditEvent.objects.exists()
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert not [path for path in schema["paths"] if "metrics" in path]


def test_with_a_multiprocess_directory_it_sums_what_other_processes_counted(
    scrape, monkeypatch, tmp_path
) -> None:
    count_in_another_process = (
        "from pms.metrics import TASKS; TASKS.labels('tests.elsewhere', 'success').inc()"
    )
    for _ in range(2):  # two processes, as two server workers or two pool processes
        subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-c", count_in_another_process],
            cwd=BASE_DIR,
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
            check=True,
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = scrape()

    labels = {"task": "tests.elsewhere", "outcome": "success"}
    assert value(samples, "pms_celery_tasks_total", **labels) == 2
