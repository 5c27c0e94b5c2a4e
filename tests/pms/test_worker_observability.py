"""A real `celery -A pms worker` (tests/workers.py) logs in JSON with the enqueuing request's id,
and its pool process's task counts reach `/metrics` through PROMETHEUS_MULTIPROC_DIR."""

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.test import APIClient

from accounts.models import User
from otp.models import OTPDelivery
from tests.otp.conftest import GENERATE_URL, Inbox, smtp_server
from tests.workers import WorkerProcess, queued_tasks, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DELIVERED = {"task": "otp.deliver_code", "outcome": "success"}


def task_count(metrics_dir: Path) -> float | None:
    """The worker's counter as a scrape of `/metrics` sharing its directory would read it."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    return registry.get_sample_value("pms_celery_tasks_total", DELIVERED)


def test_a_worker_logs_json_with_the_request_id_and_exposes_its_task_counts(
    clinician: User, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with smtp_server(Inbox()) as port, queued_tasks():
        worker = WorkerProcess(
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(port),
            LOG_FORMAT="json",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        )
        try:
            response = APIClient().post(
                GENERATE_URL, {"email": clinician.email}, HTTP_X_REQUEST_ID="req-worker-json"
            )
            assert response.status_code == 202
            wait_for(lambda: OTPDelivery.objects.filter(sent_at__isnull=False).exists())
            counted = wait_for(lambda: task_count(metrics_dir), what="the task count")
        finally:
            log = worker.stop()

    assert counted == 1
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    [issued] = [record for record in records if "one-time code issued" in record["message"]]
    assert issued["request_id"] == "req-worker-json"
    assert clinician.email not in log
