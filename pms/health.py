"""Probes for load balancers and orchestrators."""

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from pms.celery import app as celery_app
from pms.exceptions import error_response
from pms.version import VERSION

logger = logging.getLogger("pms.health")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok", "version": VERSION})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any driver error means "not ready"
        logger.warning("readiness: database unreachable", exc_info=True)
        return False


def _cache_ok() -> bool:
    key = f"readyz:{uuid.uuid4().hex}"
    try:
        cache.set(key, "1", timeout=5)
        ok = cache.get(key) == "1"
        cache.delete(key)
        return ok
    except Exception:  # any client error means "not ready"
        logger.warning("readiness: cache unreachable", exc_info=True)
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0)  # one try: a probe must answer fast
        return True
    except Exception:  # any transport error means "not ready"
        logger.warning("readiness: broker unreachable", exc_info=True)
        return False


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, the cache and (when tasks go through one) the broker answer;
    503 in the envelope otherwise."""
    checks = {"database": _database_ok(), "cache": _cache_ok()}
    if not celery_app.conf.task_always_eager:
        checks["broker"] = _broker_ok()
    if all(checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    failed = {name: ["unavailable"] for name, ok in checks.items() if not ok}
    return error_response(503, "service_unavailable", "Not ready.", failed)
