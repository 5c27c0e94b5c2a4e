"""Bounds on the expensive requests, so that no user's searches starve everyone else's requests.

`@bounded` on a view handler (the ranked patient search, document stats, the FHIR searches and
the Bulk Data kick-off) runs it

- in a **per-user concurrency slot**: at most `EXPENSIVE_CONCURRENCY_PER_USER` bounded requests
  of one user run at once, across every app instance; past it the answer is 429
  `too_many_concurrent_requests` with `Retry-After`. Each slot is one key of the default cache
  (Redis when `REDIS_URL` is set, so every instance shares them), taken with an atomic add and
  deleted when the request ends. A slot whose process died expires after `SLOT_LEASE_SECONDS`.
  Redis unreachable: the request fails closed with 503 `service_unavailable`, as the throttle
  does;
- under its request class's **statement timeout** on PostgreSQL (`EXPENSIVE_STATEMENT_TIMEOUT_MS`
  for searches and the kick-off, `STATS_STATEMENT_TIMEOUT_MS` for document stats):
  `SET LOCAL statement_timeout` (as `set_config(..., true)`) inside a transaction around the
  handler, so it holds for this request's queries only, also behind a transaction-pooling
  proxy, and ends at COMMIT (the audit INSERT runs after it, unbounded). A query past it is
  cancelled and the answer is 503 `query_timeout` with `Retry-After` (pms/exceptions.py);
- with at most `EXPENSIVE_PARALLEL_WORKERS` **parallel workers** per query (default 0), set in
  the same statement: PostgreSQL's own default, 2, lets one search use every core of a small
  server, and a user's two searches at once then starve everyone else's requests (W11,
  docs/performance.md).

On PostgreSQL the two bounds cost three statements: BEGIN, one SELECT of both `set_config`s and
COMMIT. Inside an enclosing transaction (a test's) it is four: SAVEPOINT, the SELECT, a SET of
both back to their defaults (RELEASE would keep them for the rest of the enclosing transaction)
and RELEASE. Other databases have neither bound: there it is a no-op.

Other requests pay for neither.
"""

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from psycopg2.errors import QueryCanceled
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import status

from pms.exceptions import ApplicationError, QueryTimeout, bounded_retry_after

logger = logging.getLogger(__name__)

# A slot outlives any live bounded request (a few queries, each cut at the statement timeout),
# so in practice only the slot of a process that died expires, and its user waits at most this
# long. A request outliving it (statement timeout off) may share its slot, and frees it on exit.
SLOT_LEASE_SECONDS = 60

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class TooManyConcurrentRequests(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_concurrent_requests"
    default_detail = "Too many expensive requests of yours are running; retry when one ends."

    def __init__(self, timeout_ms: int | None = None) -> None:
        super().__init__()
        # DRF's handler turns `wait` into Retry-After: a slot frees when a request ends.
        self.wait = bounded_retry_after(timeout_ms)


@contextmanager
def concurrency_slot(user: Any, timeout_ms: int | None = None) -> Iterator[None]:
    """Holds one of `user`'s EXPENSIVE_CONCURRENCY_PER_USER slots for the block (0: no limit);
    `TooManyConcurrentRequests` when every slot is taken, its Retry-After from `timeout_ms`,
    the statement timeout of the request's class."""
    limit = settings.EXPENSIVE_CONCURRENCY_PER_USER
    if limit <= 0:
        yield
        return
    slots = (f"expensive-slot:{user.pk}:{index}" for index in range(limit))
    # `add` is atomic (SET NX on Redis): of two requests racing for a slot, one gets it.
    held = next((slot for slot in slots if cache.add(slot, 1, SLOT_LEASE_SECONDS)), None)
    if held is None:
        raise TooManyConcurrentRequests(timeout_ms)
    try:
        yield
    finally:
        try:
            cache.delete(held)
        except (RedisConnectionError, RedisTimeoutError):
            # The answer is ready; the slot expires with its lease.
            logger.warning("concurrency slot not released: cache unreachable")


@contextmanager
def statement_bounds(
    milliseconds: int, parallel_workers: int, using: str = DEFAULT_DB_ALIAS
) -> Iterator[None]:
    """Runs the block in a transaction whose statements PostgreSQL cancels past `milliseconds`
    (0: unbounded) and runs with at most `parallel_workers` parallel workers each; a no-op on
    other databases."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    enclosed = connection.in_atomic_block
    try:
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), "
                    "set_config('max_parallel_workers_per_gather', %s, true)",
                    [str(milliseconds), str(parallel_workers)],
                )
            yield
            if enclosed:
                # Inside an enclosing transaction the block is a savepoint, and RELEASE keeps a
                # SET LOCAL until that transaction ends: the rest of it would run bounded too.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SET LOCAL statement_timeout TO DEFAULT; "
                        "SET LOCAL max_parallel_workers_per_gather TO DEFAULT"
                    )
    except OperationalError as error:
        # Cancelled by this timeout: its Retry-After is this class's (pms/exceptions.py turns
        # any other cancelled statement into the searches' QueryTimeout).
        if milliseconds > 0 and isinstance(error.__cause__, QueryCanceled):
            raise QueryTimeout(milliseconds) from error
        raise


def bounded(
    handler: _Handler | None = None, *, timeout_setting: str = "EXPENSIVE_STATEMENT_TIMEOUT_MS"
) -> Any:
    """Decorates a view handler `(view, request, ...)`: it runs in one of the caller's
    concurrency slots and under the statement timeout of its request class, the setting named
    by `timeout_setting` (`@bounded` for searches, `@bounded(timeout_setting=...)` for another
    class). It runs after authentication, permissions and throttles, and the audit records its
    answer after its transaction."""

    def decorate(handler: _Handler) -> _Handler:
        @functools.wraps(handler)
        def run(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            timeout_ms = getattr(settings, timeout_setting)
            with (
                concurrency_slot(request.user, timeout_ms),
                statement_bounds(timeout_ms, settings.EXPENSIVE_PARALLEL_WORKERS),
            ):
                return handler(view, request, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate(handler) if handler is not None else decorate
