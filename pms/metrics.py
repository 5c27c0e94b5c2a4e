"""Prometheus metrics (prometheus-client): what is measured, and how.

- Requests: counted and timed per route template (`AccessLogMiddleware`), never per raw path,
  so ids and PHI stay out of the labels and their number stays bounded.
- Database: every query is timed through a Django execute wrapper, installed on each connection
  as it opens (web requests, tasks and commands alike).
- Cache: the configured backend is one of the timed subclasses below.
- Celery: task outcomes are counted from `task_success`, `task_failure` and `task_retry`.

Several processes (the HTTP server's workers, a Celery worker's pool) each hold their own
counters. With `PROMETHEUS_MULTIPROC_DIR` set, prometheus-client writes them to files in that
directory and `/metrics` (pms/health.py) sums every process that writes there
(docs/deployment.md, "Metrics").
"""

import os
from collections.abc import Callable
from time import perf_counter
from typing import Any

from celery import signals
from django.db.backends.signals import connection_created
from django.http import HttpRequest
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
)

from pms.cache import LocMemCache, RedisCache

REQUESTS = Counter(
    "pms_http_requests", "Requests answered, by route template.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "pms_http_request_duration_seconds",
    "Time to answer a request, by route template.",
    ["method", "route"],
)
DB_QUERY_SECONDS = Histogram(
    "pms_db_query_duration_seconds", "Time of one database query.", ["alias"]
)
CACHE_SECONDS = Histogram(
    "pms_cache_operation_duration_seconds", "Time of one cache operation.", ["operation"]
)
TASKS = Counter("pms_celery_tasks", "Celery task outcomes.", ["task", "outcome"])

# A route label for requests no URL pattern matched: one value, whatever the path.
UNMATCHED_ROUTE = "<unmatched>"
# Any other method a client invents is one label value, so it cannot grow the series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    """The URL pattern the request matched (e.g. `api/patient/patients/(?P<pk>[^/.]+)/$`)."""
    match = request.resolver_match
    return match.route if match is not None else UNMATCHED_ROUTE


def method_of(request: HttpRequest) -> str:
    return request.method if request.method in _METHODS else "other"  # type: ignore[return-value]


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)


# --- Database ---------------------------------------------------------------------------------
def _time_query(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
) -> Any:
    start = perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        DB_QUERY_SECONDS.labels(context["connection"].alias).observe(perf_counter() - start)


def _instrument_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The wrapper list outlives reconnects, hence the check. It goes first: a test's
    # `connection.execute_wrapper()` block pops the last entry on exit, which must stay its own.
    if _time_query not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _time_query)


connection_created.connect(_instrument_connection, dispatch_uid="pms.metrics")


# --- Cache ------------------------------------------------------------------------------------
# The operations the project calls; others still work, untimed.
_CACHE_OPERATIONS = (
    "get",
    "set",
    "add",
    "delete",
    "incr",
    "get_many",
    "set_many",
    "delete_many",
    "count",
    "get_and_count",
)


class _TimedCache:
    """Times each of `_CACHE_OPERATIONS` of the backend it is mixed into."""


def _timed(operation: str) -> Callable[..., Any]:
    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            return getattr(super(_TimedCache, self), operation)(*args, **kwargs)
        finally:
            CACHE_SECONDS.labels(operation).observe(perf_counter() - start)

    timed.__name__ = operation
    return timed


for _operation in _CACHE_OPERATIONS:
    setattr(_TimedCache, _operation, _timed(_operation))


class TimedRedisCache(_TimedCache, RedisCache):
    """django-redis with the project's operations (pms/cache.py), timed."""


class TimedLocMemCache(_TimedCache, LocMemCache):
    """Django's local-memory cache with the project's operations, timed (the embedded default)."""


# --- Celery -----------------------------------------------------------------------------------
def _counter(outcome: str) -> Callable[..., None]:
    def count(sender: Any = None, **kwargs: Any) -> None:
        TASKS.labels(getattr(sender, "name", "unknown"), outcome).inc()

    return count


_count_success = _counter("success")
_count_failure = _counter("failure")
_count_retry = _counter("retry")
signals.task_success.connect(_count_success, weak=False)
signals.task_failure.connect(_count_failure, weak=False)
signals.task_retry.connect(_count_retry, weak=False)


def registry() -> CollectorRegistry:
    """What `/metrics` shows: this process, or every process of `PROMETHEUS_MULTIPROC_DIR`."""
    # prometheus-client itself treats an empty value (a copied .env.example) as unset.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return collected
    return REGISTRY
