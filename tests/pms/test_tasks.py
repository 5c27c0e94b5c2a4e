"""The Celery set-up: task defaults, eager mode, failure records, beat, readiness and the admin."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.checks import run_checks
from django.db import OperationalError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Organization, Role
from otp.models import OTPDelivery
from pms.celery import PMSTask, TransientError, _refuse_without_broker, app
from pms.models import FailedTask
from tests.factories import UserFactory
from tests.workers import require_broker

BASE_DIR = Path(__file__).resolve().parents[2]
PROJECT_APPS = ("accounts", "patient", "document", "otp", "audit", "pms", "fhir")
MAINTENANCE_TASKS = {
    "document.purge_stale_uploads",
    "otp.cleanup",
    "audit.ensure_partitions",
    "fhir.expire_exports",
}
CHANGELIST = "/admin/pms/failedtask/"


def project_tasks() -> dict[str, PMSTask]:
    return {
        name: task
        for name, task in app.tasks.items()
        if type(task).__module__.split(".")[0] in PROJECT_APPS
    }


def test_every_project_task_is_late_acknowledged_retried_and_time_limited() -> None:
    tasks = project_tasks()

    assert {"otp.deliver_code", *MAINTENANCE_TASKS} <= set(tasks)
    for name, task in tasks.items():
        assert isinstance(task, PMSTask), name
        assert task.acks_late, name
        assert task.reject_on_worker_lost, name
        assert 0 < task.soft_time_limit < task.time_limit, name
        assert OperationalError in task.autoretry_for, name
        assert task.retry_backoff, name
        assert task.retry_jitter, name
        assert task.max_retries, name


def test_task_arguments_are_ids_so_neither_broker_nor_failure_record_holds_phi() -> None:
    for name, task in project_tasks().items():
        for parameter in inspect.signature(task.run).parameters.values():
            assert parameter.annotation is int, f"{name}({parameter.name})"


def settings_in_a_fresh_process(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_URL"))}
    output = subprocess.run(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-c",
            "from pms.settings import base as s; "
            "print(s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND)",
        ],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return output.split()


def test_without_a_broker_tasks_run_eagerly_and_with_redis_they_go_to_it() -> None:
    assert settings_in_a_fresh_process() == ["True"]
    assert settings_in_a_fresh_process(REDIS_URL="redis://cache:6379/0") == [
        "False",
        "redis://cache:6379/0",
        "redis://cache:6379/0",
    ]
    assert settings_in_a_fresh_process(
        REDIS_URL="redis://cache:6379/0", CELERY_BROKER_URL="redis://broker:6379/1"
    ) == ["False", "redis://broker:6379/1", "redis://broker:6379/1"]


@pytest.mark.django_db(transaction=True)
def test_eagerly_a_task_runs_inside_the_request_right_after_its_commit(clinician) -> None:
    # The embedded default (no broker), on whatever database the run uses, SQLite included.
    response = APIClient().post("/api/otp/generate/", {"email": clinician.email})

    assert response.status_code == 202
    assert mail.outbox[0].to == [clinician.email]  # sent before the answer left
    assert OTPDelivery.objects.get().sent_at is not None


def test_neither_worker_nor_beat_starts_without_a_broker() -> None:
    with pytest.raises(SystemExit, match="No broker is configured"):
        _refuse_without_broker()


def test_production_checks_warn_when_tasks_would_run_inside_requests(settings) -> None:
    settings.CELERY_BROKER_URL = ""
    assert [m.id for m in run_checks(include_deployment_checks=True) if m.id == "pms.W001"] == [
        "pms.W001"
    ]

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/1"
    assert "pms.W001" not in {m.id for m in run_checks(include_deployment_checks=True)}


# --- Failure records (eager: the retries run at once) ----------------------------------------


@app.task(name="tests.flaky_service")
def flaky_service(record_id: int) -> None:
    raise TransientError("the test service is unavailable")


@app.task(name="tests.broken")
def broken(record_id: int) -> None:
    raise ValueError("carol@example.com is not welcome here")  # a message that quotes data


def test_a_task_that_exhausts_its_retries_is_recorded_with_its_error(db: None) -> None:
    result = flaky_service.delay(42)

    assert result.failed()
    failed = FailedTask.objects.get()
    assert failed.task_id == result.id
    assert failed.task_name == "tests.flaky_service"
    assert failed.args == [42]
    assert failed.retries == flaky_service.max_retries
    assert failed.error_type == "pms.celery.TransientError"
    assert failed.error_message == "the test service is unavailable"


def test_an_error_not_worth_retrying_is_recorded_at_once_with_its_type_only(db: None) -> None:
    broken.delay(7)

    failed = FailedTask.objects.get()
    assert failed.retries == 0
    assert failed.error_type == "builtins.ValueError"
    assert failed.error_message == ""  # a library's message may quote PHI


# --- Beat ------------------------------------------------------------------------------------


def test_the_beat_schedule_runs_every_maintenance_task_hourly(settings) -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert {entry["task"] for entry in schedule.values()} == MAINTENANCE_TASKS
    for entry in schedule.values():
        assert entry["task"] in app.tasks
        assert isinstance(entry["schedule"], crontab)
        assert entry["schedule"].hour == set(range(24))
        assert len(entry["schedule"].minute) == 1
    assert app.conf.beat_schedule == schedule


# --- Readiness -------------------------------------------------------------------------------


@pytest.fixture
def tasks_through(monkeypatch):
    def use(broker_url: str) -> None:
        monkeypatch.setitem(app.conf, "task_always_eager", False)
        # (broker_url would lose to a CELERY_BROKER_URL variable of the test run)
        monkeypatch.setitem(app.conf, "broker_write_url", broker_url)
        # Publishing reuses pooled connections to the broker of the first publish.
        monkeypatch.setattr(app.amqp, "_producer_pool", None)

    return use


def test_readyz_checks_the_broker_when_tasks_go_through_one(api_client, db, tasks_through):
    tasks_through(require_broker())

    response = api_client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "cache": True, "broker": True}


def test_readyz_is_503_when_the_broker_is_unreachable(api_client, db, tasks_through):
    tasks_through("redis://127.0.0.1:9/0")  # nothing listens on port 9

    response = api_client.get("/readyz")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"broker": ["unavailable"]}


@pytest.mark.django_db(transaction=True)
def test_a_code_request_answers_503_when_the_broker_is_unreachable(
    clinician, tasks_through
) -> None:
    tasks_through("redis://127.0.0.1:9/0")

    known = APIClient().post("/api/otp/generate/", {"email": clinician.email})
    unknown = APIClient().post("/api/otp/generate/", {"email": "nobody@example.com"})

    for response in (known, unknown):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
    assert OTPDelivery.objects.count() == 2  # committed, then the enqueue failed


# --- The admin -------------------------------------------------------------------------------


@pytest.fixture
def failed_task(db: None) -> FailedTask:
    return FailedTask.objects.create(
        task_id="0b4f0c6e-failed",
        task_name="otp.deliver_code",
        args=[987654],
        retries=7,
        error_type="otp.delivery.DeliveryUnavailable",
        error_message="the mail server is unavailable: ConnectionRefusedError",
    )


def test_only_superusers_see_failed_tasks_in_the_admin(
    failed_task: FailedTask, organization: Organization
) -> None:
    clinic_admin = UserFactory.create(role=Role.ADMIN, organization=organization, is_staff=True)
    clinic_admin.user_permissions.add(*Permission.objects.filter(content_type__app_label="pms"))
    as_clinic_admin, as_operator = Client(), Client()
    as_clinic_admin.force_login(clinic_admin)
    as_operator.force_login(UserFactory.create(is_staff=True, is_superuser=True, organization=None))

    assert as_clinic_admin.get(CHANGELIST).status_code == 403
    assert as_clinic_admin.get(f"{CHANGELIST}{failed_task.pk}/change/").status_code == 403
    assert "failedtask" not in as_clinic_admin.get("/admin/").content.decode()
    listed = as_operator.get(CHANGELIST)
    assert listed.status_code == 200
    assert [row.pk for row in listed.context["cl"].result_list] == [failed_task.pk]
    assert as_operator.get(f"{CHANGELIST}{failed_task.pk}/change/").status_code == 200
    assert as_operator.get(f"{CHANGELIST}add/").status_code == 403
    assert FailedTask.objects.count() == 1


def test_an_operator_runs_a_failed_task_again_and_its_record_goes(
    failed_task: FailedTask, clinician, django_capture_on_commit_callbacks
) -> None:
    delivery = OTPDelivery.objects.create(user=clinician, purpose="login")
    FailedTask.objects.filter(pk=failed_task.pk).update(args=[delivery.pk])
    operator = Client()
    operator.force_login(UserFactory.create(is_staff=True, is_superuser=True, organization=None))

    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            CHANGELIST, {"action": "run_again", "_selected_action": [failed_task.pk]}
        )

    assert response.status_code == 302
    assert not FailedTask.objects.exists()
    assert mail.outbox[0].to == [clinician.email]  # the task ran (eagerly, in this test)
    assert OTPDelivery.objects.get().sent_at is not None
