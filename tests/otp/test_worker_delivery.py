"""One-time codes delivered by a real Celery worker on the Redis broker (tests/workers.py)."""

import asyncio
import logging
import os
import signal
import statistics
import time
from collections.abc import Iterator
from email.message import Message as EmailMessage
from typing import Any

import pytest
from celery.signals import task_retry
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import User
from otp.models import OTPCode, OTPDelivery
from otp.services import otp_request
from otp.tasks import deliver_code
from pms.celery import app
from pms.context import RequestIDLogFilter
from pms.models import FailedTask
from pms.throttles import AuthRateThrottle
from tests.factories import UserFactory
from tests.otp.conftest import (
    GENERATE_URL,
    Inbox,
    code_in,
    free_port,
    send_email_to,
    smtp_server,
)
from tests.workers import WorkerProcess, queued_tasks, thread_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def body_of(message: EmailMessage) -> str:
    return message.get_payload(decode=True).decode()  # type: ignore[union-attr]


@pytest.fixture
def worker() -> Iterator[None]:
    with thread_worker():
        yield


@pytest.fixture
def worker_log() -> Iterator[list[str]]:
    """Log lines as the production format renders them, request id included."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(RequestIDLogFilter())
    handler.setFormatter(logging.Formatter("[%(request_id)s] %(name)s %(message)s"))
    otp_logger = logging.getLogger("otp")
    otp_logger.addHandler(handler)
    level = otp_logger.level
    otp_logger.setLevel(logging.INFO)
    yield lines
    otp_logger.setLevel(level)
    otp_logger.removeHandler(handler)


def test_a_code_travels_through_the_worker_to_the_mail_server_and_verifies(
    clinician: User, smtp_inbox, worker, worker_log, verify
) -> None:
    response = APIClient().post(
        GENERATE_URL, {"email": clinician.email}, HTTP_X_REQUEST_ID="req-otp-worker-1"
    )

    assert response.status_code == 202
    [message] = wait_for(lambda: smtp_inbox, what="the email")
    assert message["To"] == clinician.email
    assert verify(clinician.email, code_in(body_of(message))).status_code == 200
    delivery = OTPDelivery.objects.get()
    assert delivery.sent_at is not None
    assert delivery.attempts == 1
    # The worker's log lines carry the id of the request that enqueued the task.
    assert (
        f"[req-otp-worker-1] otp one-time code issued (user {clinician.pk}, purpose login)"
        in worker_log
    )


def test_a_mail_server_down_then_back_gets_the_email_exactly_once(
    clinician: User, settings, worker, verify
) -> None:
    port = free_port()
    send_email_to(settings, port)  # nothing listens there yet

    retried: list[str] = []

    def record_retry(request: Any, **_: Any) -> None:
        retried.append(request.id)

    # The attempt is counted before the connection is tried: wait for the worker to give that
    # try up (Celery schedules the retry), not for the count, or a slow machine may connect
    # only once the server below listens.
    task_retry.connect(record_retry, weak=False)
    try:
        assert APIClient().post(GENERATE_URL, {"email": clinician.email}).status_code == 202
        wait_for(lambda: retried, what="a failed try")
    finally:
        task_retry.disconnect(record_retry)
    inbox = Inbox()
    with smtp_server(inbox, port=port):
        [message] = wait_for(lambda: inbox.messages, what="the retried email")
        delivery = wait_for(lambda: OTPDelivery.objects.filter(sent_at__isnull=False).first())
        time.sleep(1.5)  # room for a duplicate, were there one

    assert len(inbox.messages) == 1
    assert delivery.attempts >= 2
    assert verify(clinician.email, code_in(body_of(message))).status_code == 200
    assert not FailedTask.objects.exists()


def queued_messages() -> int:
    with app.connection_for_write() as connection:
        return int(connection.default_channel.client.llen(app.conf.task_default_queue))


def test_a_rolled_back_transaction_enqueues_nothing(clinician: User) -> None:
    with queued_tasks():

        def request_then_fail() -> None:
            with transaction.atomic():
                otp_request(email=clinician.email, purpose="login")
                raise RuntimeError("something later in the request failed")

        with pytest.raises(RuntimeError):
            request_then_fail()
        after_rollback = queued_messages()
        otp_request(email=clinician.email, purpose="verify_email")
        after_commit = queued_messages()

    assert after_rollback == 0
    assert after_commit == 1  # the same call, committed, does enqueue
    assert list(OTPDelivery.objects.values_list("purpose", flat=True)) == ["verify_email"]


def test_a_task_that_exhausts_its_retries_is_recorded_without_the_address(
    clinician: User, settings, worker, monkeypatch
) -> None:
    send_email_to(settings, free_port())  # a mail server that never comes back
    monkeypatch.setattr(deliver_code, "max_retries", 1)

    response = APIClient().post(
        GENERATE_URL, {"email": clinician.email}, HTTP_X_REQUEST_ID="req-otp-worker-2"
    )

    failed = wait_for(FailedTask.objects.first, what="the failure record")
    delivery = OTPDelivery.objects.get()
    assert response.status_code == 202
    assert failed.task_name == "otp.deliver_code"
    assert failed.args == [delivery.pk]
    assert failed.kwargs == {}
    assert failed.retries == 1
    assert failed.error_type == "otp.delivery.DeliveryUnavailable"
    assert failed.error_message == "the mail server is unavailable: ConnectionRefusedError"
    assert failed.request_id == "req-otp-worker-2"
    assert delivery.attempts == 2
    assert delivery.sent_at is None
    record = FailedTask.objects.filter(pk=failed.pk).values().get()
    assert clinician.email not in repr(record)


class StallFirstMessage(Inbox):
    """Holds the first message's DATA forever, as a mail server hanging mid-send; accepts the
    ones after it."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.stalled:
            self.stalled += 1
            await asyncio.sleep(3600)
        return str(await super().handle_DATA(server, session, envelope))


def test_a_worker_killed_mid_task_completes_it_once_after_a_restart(
    clinician: User, verify
) -> None:
    inbox = StallFirstMessage()
    # A killed worker's task returns to the queue once the visibility timeout has passed.
    env = {"CELERY_VISIBILITY_TIMEOUT_SECONDS": "1"}
    with smtp_server(inbox) as port, queued_tasks():
        env.update(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port))
        first = WorkerProcess(**env)
        try:
            otp_request(email=clinician.email, purpose="login")
            wait_for(lambda: inbox.stalled, timeout=30, what="the first worker to be mid-send")
            first.kill()
        finally:
            first.stop()
        assert OTPDelivery.objects.get().sent_at is None
        time.sleep(1)  # past the visibility timeout
        second = WorkerProcess(**env)
        try:
            [message] = wait_for(lambda: inbox.messages, timeout=30, what="the email")
            wait_for(lambda: OTPDelivery.objects.filter(sent_at__isnull=False).exists())
        finally:
            log = second.stop()

    assert len(inbox.messages) == 1, log
    delivery = OTPDelivery.objects.get()
    assert delivery.attempts == 2  # the killed try and the completed one
    assert verify(clinician.email, code_in(body_of(message))).status_code == 200
    assert OTPCode.objects.get(user=clinician).consumed_at is not None


def test_a_pool_process_killed_mid_task_is_run_again_once_by_its_worker(
    clinician: User, verify
) -> None:
    inbox = StallFirstMessage()
    with smtp_server(inbox) as port, queued_tasks():
        worker = WorkerProcess(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port))
        try:
            APIClient().post(GENERATE_URL, {"email": clinician.email}, HTTP_X_REQUEST_ID="req-k1")
            wait_for(lambda: inbox.stalled, timeout=30, what="the pool process to be mid-send")
            [pool_process] = worker.pool_processes()
            os.kill(pool_process, signal.SIGKILL)
            # reject_on_worker_lost: the worker puts the task back at once and runs it again.
            [message] = wait_for(lambda: inbox.messages, timeout=30, what="the email")
            wait_for(lambda: OTPDelivery.objects.filter(sent_at__isnull=False).exists())
        finally:
            log = worker.stop()

    assert len(inbox.messages) == 1, log
    assert OTPDelivery.objects.get().attempts == 2
    assert verify(clinician.email, code_in(body_of(message))).status_code == 200
    # The worker process logs in the app's format, with the enqueuing request's id.
    assert f"otp [req-k1] one-time code issued (user {clinician.pk}, purpose login)" in log


def test_known_and_unknown_addresses_answer_in_the_same_time_even_with_a_slow_mail_server(
    organization, settings, worker, monkeypatch
) -> None:
    monkeypatch.setattr(AuthRateThrottle, "THROTTLE_RATES", {"auth": "1000/min"})
    known = [
        UserFactory.create(username=f"timing{n}", organization=organization).email
        for n in range(20)
    ]
    unknown = [f"nobody{n}@example.com" for n in range(20)]
    inbox = Inbox()
    with smtp_server(inbox, reply_delay=0.2) as port:
        send_email_to(settings, port)
        client = APIClient()
        for n in range(3):  # warm up: the first requests pay for imports and connections
            client.post(GENERATE_URL, {"email": f"warmup{n}@example.com"})
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        for known_email, unknown_email in zip(known, unknown, strict=True):
            for kind, email in (("known", known_email), ("unknown", unknown_email)):
                started = time.perf_counter()
                response = client.post(GENERATE_URL, {"email": email})
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == 202
        # The worker really is sending, at 200 ms per SMTP reply, while the requests answer.
        wait_for(lambda: inbox.messages, what="the first email")

    known_median = statistics.median(timings["known"])
    unknown_median = statistics.median(timings["unknown"])
    assert abs(known_median - unknown_median) < 0.010, timings
    assert known_median < 0.2  # not even one SMTP reply is waited for
    assert OTPDelivery.objects.filter(user__isnull=False).count() == 20
