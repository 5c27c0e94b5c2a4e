"""The Celery app: background work (email, maintenance, long jobs) off the request path.

- Configuration comes from Django settings prefixed `CELERY_` (pms/settings/base.py). Without a
  broker (the embedded default) tasks run eagerly in the process that enqueues them.
- Every task of the project derives from `PMSTask`: late acknowledgement, requeue when the worker
  dies, a time limit, and retries with exponential backoff and jitter on transient errors.
  Because a task may therefore run more than once, every task is idempotent.
- Task arguments are ids, never PHI: the broker, the result store and the failure record all
  hold them.
- A task that gives up (retries exhausted, or an error not worth retrying) is recorded as a
  `pms.FailedTask`, which platform operators see in the Django admin.
- The id of the request that enqueued a task travels in a message header and is restored in the
  worker, so its log lines carry the same request id as the request's.
"""

import functools
import logging
import os
from logging.config import dictConfig
from typing import Any

from celery import Celery, signals
from celery.contrib.django.task import DjangoTask
from django.db import InterfaceError, OperationalError, transaction

from pms.context import current_request_id, request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms.settings.base")

logger = logging.getLogger("pms.tasks")

REQUEST_ID_HEADER = "pms_request_id"


class TaskError(Exception):
    """A task failure whose message the project wrote, without PHI: it is recorded as it is."""


class TransientError(TaskError):
    """A failure that may pass by itself (a mail server or storage away): the task retries."""


# Retried by every task; an app adds its own (a storage outage, say) with `autoretry_for`.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, TransientError)


class PMSTask(DjangoTask):
    """Defaults of every task of the project; enqueue with `delay_on_commit`."""

    # Acknowledge after the task ran, and requeue a task whose worker process died, so a killed
    # worker loses nothing; the task then runs again, which is why every task is idempotent.
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    # Seven waits of up to 1, 2, 4 ... 64 s, each drawn at random below its bound (full jitter)
    # so that workers retrying after one outage do not come back at once: two minutes at most.
    retry_backoff = True
    retry_backoff_max = 64
    retry_jitter = True
    max_retries = 7
    # Long enough for any request-sized job (SMTP has EMAIL_TIMEOUT per step); long jobs such as
    # exports set their own. The soft limit raises in the task, the hard one ends its process.
    soft_time_limit = 120
    time_limit = 150

    def apply_async_on_commit(self, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        # The request id is taken now, while the enqueuing request is current; the publish
        # itself may run later (a test's captured callbacks, say).
        headers = options.setdefault("headers", {})
        headers.setdefault(REQUEST_ID_HEADER, current_request_id())
        transaction.on_commit(functools.partial(self.apply_async, args, kwargs, **options))

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        self.apply_async_on_commit(args, kwargs)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        from pms.models import FailedTask  # the app registry is ready once tasks run

        try:
            FailedTask.record(
                task_id=task_id,
                task_name=self.name,
                args=list(args or ()),
                kwargs=dict(kwargs or {}),
                retries=self.request.retries,
                error=exc,
                request_id=current_request_id(),
            )
        except Exception:  # the database may be what failed; the worker log keeps the failure
            logger.exception("could not record the failed task %s[%s]", self.name, task_id)


app = Celery("pms", task_cls=PMSTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, current_request_id())


@signals.task_prerun.connect
def _restore_request_id(task: Any = None, **kwargs: Any) -> None:
    if task is None:
        return
    # A worker sees custom headers as request attributes; an eager run keeps them in `headers`.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) or (task.request.headers or {}).get(
        REQUEST_ID_HEADER
    )
    if request_id:
        task.request.pms_request_id_token = request_id_var.set(request_id)


@signals.task_postrun.connect
def _forget_request_id(task: Any = None, **kwargs: Any) -> None:
    token = getattr(task.request, "pms_request_id_token", None) if task else None
    if token is not None:
        request_id_var.reset(token)


@signals.setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log like the web processes (format with the request id, LOG_LEVEL).

    Connected at all, this keeps Celery from replacing the root logger's handlers. Logging that
    is set up already (by `django.setup()`, or a test runner around a test worker) stays as is.
    """
    if logging.getLogger().handlers:
        return
    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.celeryd_init.connect
@signals.beat_init.connect
def _refuse_without_broker(**kwargs: Any) -> None:
    if app.conf.task_always_eager:
        raise SystemExit(
            "No broker is configured (set CELERY_BROKER_URL or REDIS_URL): tasks run in the web "
            "process itself, so there is nothing for a worker or beat to do."
        )
