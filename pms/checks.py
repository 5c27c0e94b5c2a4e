from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register


@register(deploy=True)
def broker_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.CELERY_BROKER_URL:
        return []
    return [
        Warning(
            "No Celery broker is configured: background tasks run inside the web requests that "
            "enqueue them, so a slow mail server slows them and their timing shows which "
            "one-time code requests found an account.",
            hint="Set CELERY_BROKER_URL (or REDIS_URL) and run `celery -A pms worker` and "
            "`celery -A pms beat`.",
            id="pms.W001",
        )
    ]
