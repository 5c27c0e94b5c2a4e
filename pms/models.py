from typing import Any

from django.db import models
from django.utils import timezone

from pms.celery import TaskError


class FailedTask(models.Model):
    """A background task that gave up: its retries ran out, or it failed in a way no retry fixes.

    Kept for platform operators, who find out why and run it again (tasks are idempotent). The
    arguments are ids (task arguments never hold PHI), and the error message is kept only when
    the project wrote it; a library's message may quote data, so of those only the type is kept.
    """

    task_id = models.CharField(max_length=64, unique=True)
    task_name = models.CharField(max_length=200, db_index=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    retries = models.PositiveIntegerField(help_text="Retries made before it gave up.")
    error_type = models.CharField(max_length=200)
    error_message = models.TextField(blank=True)
    request_id = models.CharField(
        max_length=128, blank=True, help_text="The request that enqueued the task."
    )
    failed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}]"

    @classmethod
    def record(
        cls,
        *,
        task_id: str,
        task_name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        retries: int,
        error: BaseException,
        request_id: str,
    ) -> "FailedTask":
        error_type = type(error)
        failed, _ = cls.objects.update_or_create(
            task_id=task_id,
            defaults={
                "task_name": task_name,
                "args": args,
                "kwargs": kwargs,
                "retries": retries,
                "error_type": f"{error_type.__module__}.{error_type.__qualname__}",
                "error_message": str(error) if isinstance(error, TaskError) else "",
                "request_id": "" if request_id == "-" else request_id,
                "failed_at": timezone.now(),
            },
        )
        return failed
