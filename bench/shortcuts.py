"""What each request-path shortcut saves: `python -m bench.shortcuts [--rounds 7] [--calls 200]
[--only NAME ...]`;
`python -m bench.shortcuts --current W1 W5 [--rounds 1]` times the code as it is.

Each shortcut is timed against the stock Django/DRF part it replaces, on the workload it serves
(W1 list page 1, W5 detail, W7 organization stats), in this process: requests go through Django's
test client with a real access token against the benchmark's 1M-patient database
(`BENCH_DATABASE_URL`, default pms_bench; generate it with `make bench` first), DEBUG off, Redis
(`BENCH_SHORTCUTS_REDIS_URL`, default db 8). A round is `--calls` requests; the rounds alternate
current and stock (current first in even rounds, stock first in odd ones) so the machine's drift
falls on both. Reported: the medians over the rounds of CPU (`time.process_time`) and wall time
per request, and the SQL statements of one request. Every answer must be a 200.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pms_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
PATIENTS = "/api/patient/patients/"


def configure() -> None:
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["REDIS_URL"] = os.environ.get("BENCH_SHORTCUTS_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="pms.settings.base",
        DEBUG="false",
        SECRET_KEY="bench-shortcuts-a-local-measurement-key",  # noqa: S106
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        # One token serves the whole run.
        JWT_ACCESS_MINUTES="600",
        # High enough that no round is throttled; the throttle's cost does not depend on it.
        THROTTLE_USER="1000000/min",
    )
    import django

    django.setup()


@contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def stock_output() -> Iterator[None]:
    """DRF's list and retrieve: the serializer's fields rendered one by one from model rows,
    instead of the declared `.values()` rows."""
    from rest_framework import mixins

    from patient.views import PatientViewSet

    with (
        patched(PatientViewSet, "list", mixins.ListModelMixin.list),
        patched(PatientViewSet, "retrieve", mixins.RetrieveModelMixin.retrieve),
    ):
        yield


def stock_renderer() -> AbstractContextManager[None]:
    """DRF's JSONRenderer (the standard library's json) instead of orjson."""
    from rest_framework.renderers import JSONRenderer

    from pms.renderers import ORJSONRenderer

    return patched(ORJSONRenderer, "render", JSONRenderer.render)


def stock_audit_insert() -> AbstractContextManager[None]:
    """`AuditEvent.objects.create()` instead of the prepared INSERT."""
    from audit import services
    from audit.models import AuditEvent

    return patched(services, "_insert", lambda values: AuditEvent.objects.create(**values))


def stock_filterset() -> AbstractContextManager[None]:
    """django-filter's backend, which builds the FilterSet on every request."""
    from django_filters.rest_framework import DjangoFilterBackend

    from pms.filters import FilterBackend

    return patched(FilterBackend, "get_filterset", DjangoFilterBackend.get_filterset)


def stock_count() -> AbstractContextManager[None]:
    """No `known_count` hook: the unfiltered list is counted (capped) like any other."""
    from patient.views import PatientViewSet

    return patched(PatientViewSet, "known_count", lambda self: None)


def stock_user() -> AbstractContextManager[None]:
    """simplejwt's `get_user`: the user read from the database on every request."""
    from rest_framework_simplejwt import authentication

    from accounts.authentication import JWTAuthentication

    return patched(JWTAuthentication, "get_user", authentication.JWTAuthentication.get_user)


@contextmanager
def stock_throttle() -> Iterator[None]:
    """DRF's UserRateThrottle: the list of the window's request times, read and rewritten.

    The list starts each round half full at the default 1,200/min, as for a user at 10 rps (the
    bench's load users send ~20 rps each at W5's saturation).
    """
    from django.core.cache import cache
    from rest_framework import throttling

    from pms.throttles import UserRateThrottle

    key = UserRateThrottle.cache_format % {"scope": "user", "ident": USER_ID}
    cache.set(key, [time.time()] * 600, 60)
    with (
        stock_count_alone(),
        patched(UserRateThrottle, "allow_request", throttling.SimpleRateThrottle.allow_request),
        patched(UserRateThrottle, "wait", throttling.SimpleRateThrottle.wait),
    ):
        yield


def stock_count_alone() -> AbstractContextManager[None]:
    """The fixed-window throttle counting the request in a round trip of its own, after the
    authentication has read the user in another."""
    from pms.throttles import UserRateThrottle

    return patched(UserRateThrottle, "counted_window", classmethod(lambda cls, *args: None))


def stock_stats() -> AbstractContextManager[None]:
    """No stats cache: the organization's stats aggregated on every request."""
    from document import selectors

    return patched(selectors, "cached_stats", lambda scope, compute: compute())


USER_ID: Any = None
# name: (what it replaces, workloads, the stock part, calls per round if not --calls)
SHORTCUTS: dict[str, tuple[Callable[[], AbstractContextManager[None]], list[str], int | None]] = {
    "output": (stock_output, ["W1", "W5"], None),
    "orjson": (stock_renderer, ["W1", "W5"], None),
    "audit-insert": (stock_audit_insert, ["W1", "W5"], None),
    "filterset-skip": (stock_filterset, ["W1"], None),
    "known-count": (stock_count, ["W1"], None),
    "user-cache": (stock_user, ["W1", "W5"], None),
    "throttle": (stock_throttle, ["W1", "W5"], None),
    "count-with-user": (stock_count_alone, ["W1", "W5"], None),
    # A stock request aggregates 600,000 documents (~1 s): a few calls tell.
    "stats-cache": (stock_stats, ["W7 org"], 3),
}


def workload_paths(organization_id: int) -> dict[str, list[str]]:
    from patient.models import Patient

    ids = list(
        Patient.objects.filter(organization_id=organization_id, is_active=True)
        .order_by("-created_at")
        .values_list("pk", flat=True)[:200]
    )
    return {
        "W1": [f"{PATIENTS}?page_size=20"],
        "W5": [f"{PATIENTS}{pk}/" for pk in ids],
        "W7 org": ["/api/document/documents/stats/"],
    }


def run_round(client: Any, paths: list[str], calls: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        response = client.get(paths[i % len(paths)])
        if response.status_code != 200:
            raise SystemExit(f"{paths[i % len(paths)]} answered {response.status_code}")
    return (
        (time.process_time() - cpu) / calls * 1000,
        (time.perf_counter() - wall) / calls * 1000,
    )


def statements(client: Any, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    return len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--only", nargs="*", choices=sorted(SHORTCUTS), default=None)
    parser.add_argument(
        "--current",
        nargs="+",
        metavar="WORKLOAD",
        help="only time the code as it is on these workloads (W1, W5, W7 org), one line each: "
        "run from two checkouts in turn to compare them",
    )
    args = parser.parse_args()
    configure()
    from contextlib import nullcontext

    from django.test import Client
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from patient.models import PatientCount

    global USER_ID
    largest = PatientCount.objects.order_by("-active").values_list("organization_id", flat=True)
    organization_id = largest.first()
    user = User.objects.filter(organization_id=organization_id, role="clinician").first()
    if organization_id is None or user is None:
        raise SystemExit("No benchmark dataset: run `make bench` first.")
    USER_ID = user.pk
    token = RefreshToken.for_user(user).access_token
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    paths = workload_paths(organization_id)
    if args.current:
        for workload in args.current:
            run_round(client, paths[workload], min(args.calls, 20))  # warm up
            rounds = [run_round(client, paths[workload], args.calls) for _ in range(args.rounds)]
            print(
                f"{workload}: CPU {statistics.median(r[0] for r in rounds):.2f} ms, "
                f"wall {statistics.median(r[1] for r in rounds):.2f} ms per request",
                flush=True,
            )
        return
    print(
        "| shortcut | workload | current CPU ms | stock CPU ms | saving CPU ms | "
        "current wall ms | stock wall ms | SQL current / stock |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name in args.only or SHORTCUTS:
        stock, workloads, calls = SHORTCUTS[name]
        calls = calls or args.calls
        for workload in workloads:
            variants = {"current": nullcontext, "stock": stock}
            samples: dict[str, list[tuple[float, float]]] = {"current": [], "stock": []}
            sql = {}
            for variant, context in variants.items():
                with context():
                    run_round(client, paths[workload], min(calls, 20))  # warm up
                    sql[variant] = statements(client, paths[workload][0])
            for number in range(args.rounds):
                order = ["current", "stock"] if number % 2 == 0 else ["stock", "current"]
                for variant in order:
                    with variants[variant]():
                        samples[variant].append(run_round(client, paths[workload], calls))
            cpu = {v: statistics.median(s[0] for s in samples[v]) for v in samples}
            wall = {v: statistics.median(s[1] for s in samples[v]) for v in samples}
            print(
                f"| {name} | {workload} | {cpu['current']:.2f} | {cpu['stock']:.2f} | "
                f"{cpu['stock'] - cpu['current']:.2f} | {wall['current']:.2f} | "
                f"{wall['stock']:.2f} | {sql['current']} / {sql['stock']} |",
                flush=True,
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
