"""Where a request's time goes, by layer, for W1 (list, page 1) and W5 (detail), or for the
workloads named with `--workload` (as bench/run.py names them: `--workload "W3 typo"`).

    python -m bench.profile [--requests 300] [--workload W1 ...] [--scale 1.0]   (make profile)

Each request goes through the WSGI application in this process (`pms.wsgi`: every middleware,
real JWT, DEBUG off, Redis), one at a time, against the bench database; no HTTP server, so the
table is the app's own cost. First `--requests` requests unprofiled give the wall and CPU time
per request; then as many under pyinstrument (sampling every 0.1 ms) give the split.

Each sample of the call stack is given to one layer, by the first rule that holds:

1. an *owning* layer anywhere on the stack, outermost first: `authentication`
   (`perform_authentication` and below: the token, the user lookup or its cache) and `audit`
   (the event's recording and its INSERT, compile and commit included);
2. `database wait`: the sample is in the call that sends SQL to PostgreSQL and waits for the
   answer (or commits, or checks the connection);
3. `Redis`: in the Redis client (the throttle; the user cache is under authentication);
4. `ORM compile`: under `SQLCompiler.as_sql` (SQL compilation);
5. `rendering`: under a renderer (JSON encoding); `serialization`: under a serializer or field;
6. `ORM (querysets, rows)`: anywhere else in django.db (building querysets, model rows);
7. `DRF dispatch and view`: anywhere else under DRF, django-filter or this project's views,
   selectors, pagination and throttles;
8. `middleware`: in a middleware, above the view;
9. `Django handler`: the rest (WSGI handler, URL resolving, request and response objects).

Each layer is its share of the samples times the unprofiled wall time per request, so the
layers add up to that time (sampling slows the profiled requests themselves).
"""

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from bench import run
from bench.generate import BenchError, configure_django, ensure_dataset

# pyinstrument's default; a finer interval slows every request several times over.
SAMPLE_INTERVAL_S = 0.001
LAYERS = (
    "middleware",
    "authentication",
    "DRF dispatch and view",
    "ORM compile",
    "ORM (querysets, rows)",
    "database wait",
    "Redis",
    "serialization",
    "rendering",
    "audit",
    "Django handler",
)
# (file path fragment, function or None for any): where the process waits on PostgreSQL.
DATABASE_WAIT = (
    ("django/db/backends/utils.py", "_execute"),
    ("django/db/backends/utils.py", "_executemany"),
    ("django/db/backends/base/base.py", "_commit"),
    ("django/db/backends/base/base.py", "_rollback"),
    ("django/db/backends/postgresql/base.py", "is_usable"),
    ("django/db/backends/postgresql/base.py", "get_new_connection"),
    ("psycopg2/", None),
)
MIDDLEWARE = ("/middleware", "corsheaders/", "whitenoise/", "axes/", "pms/middleware.py")
VIEW = ("rest_framework/", "django_filters/", "/patient/", "/pms/", "/document/", "/accounts/")
SERIALIZATION = (
    "rest_framework/serializers.py",
    "rest_framework/fields.py",
    "rest_framework/relations.py",
    "serializers.py",
    "pms/representation.py",
)
RENDERING = ("rest_framework/renderers.py", "orjson", "/json/", "pms/renderers.py")


@dataclass(frozen=True)
class Frame:
    path: str
    function: str


def _matches(frame: Frame, fragments: Iterable[str]) -> bool:
    return any(fragment in frame.path for fragment in fragments)


def owner(frame: Frame) -> str | None:
    if frame.function == "perform_authentication" or _matches(
        frame, ("rest_framework_simplejwt/", "accounts/authentication.py")
    ):
        return "authentication"
    if "/audit/" in frame.path and frame.function not in ("dispatch", "perform_authentication"):
        return "audit"
    return None


def layer_of(stack: list[Frame]) -> str:
    """The layer of a sample whose innermost frame is `stack[-1]`."""
    for frame in stack:
        found = owner(frame)
        if found:
            return found
    # The innermost Python frame: a C call under it (psycopg2's execute) is its wait.
    waiting = next((frame for frame in reversed(stack) if frame.path != "<built-in>"), stack[-1])
    if any(
        fragment in waiting.path and function in (None, waiting.function)
        for fragment, function in DATABASE_WAIT
    ):
        return "database wait"
    rules: tuple[tuple[str, Callable[[Frame], bool]], ...] = (
        ("Redis", lambda f: "/redis/" in f.path),
        ("ORM compile", lambda f: f.function == "as_sql" and "models/sql/compiler.py" in f.path),
        ("rendering", lambda f: _matches(f, RENDERING)),
        ("serialization", lambda f: _matches(f, SERIALIZATION)),
        ("ORM (querysets, rows)", lambda f: "django/db/" in f.path),
        ("DRF dispatch and view", lambda f: _matches(f, VIEW) and not _matches(f, MIDDLEWARE)),
        ("middleware", lambda f: _matches(f, MIDDLEWARE)),
    )
    for name, rule in rules:
        if any(rule(frame) for frame in stack):
            return name
    return "Django handler"


def parse_frame(identifier: str) -> Frame:
    # pyinstrument's frame identifier: "function\x00path\x00line" and "\x01"-led attributes.
    function, path, *_rest = identifier.split("\x01", 1)[0].split("\x00")
    return Frame(path, function)


def split_by_layer(records: Iterable[tuple[list[str], float]]) -> dict[str, float]:
    """Seconds per layer of pyinstrument's samples (each a call stack, outermost first, and the
    time it stood for)."""
    totals = dict.fromkeys(LAYERS, 0.0)
    for identifiers, seconds in records:
        if identifiers:
            totals[layer_of([parse_frame(identifier) for identifier in identifiers])] += seconds
    return totals


def wsgi_caller(path: str, token: str) -> Callable[[], int]:
    """One GET of `path` through the WSGI app, as a server would call it; returns the status."""
    from pms.wsgi import application

    route, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        # As the server passes a request its proxy marked https (X-Forwarded-Proto).
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
        statuses.append(status)
        return lambda _data: None

    def call() -> int:
        response = application(
            {**environ, "wsgi.input": io.BytesIO()},
            start_response,  # type: ignore[arg-type]
        )
        try:
            b"".join(response)
        finally:
            response.close()  # type: ignore[attr-defined]
        return int(statuses.pop().split()[0])

    return call


def profile_workload(paths: list[str], token: str, requests: int) -> dict[str, Any]:
    from pyinstrument import Profiler

    calls = [wsgi_caller(path, token) for path in paths]

    def batch() -> None:
        for k in range(requests):
            status = calls[k % len(calls)]()
            if status != 200:
                raise BenchError(f"{paths[k % len(paths)]} answered {status}")

    batch()  # warm-up: connections, caches, imports
    walls, cpus = [], []
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        batch()
        walls.append((time.perf_counter() - wall) / requests * 1000)
        cpus.append((time.process_time() - cpu) / requests * 1000)
    profiler = Profiler(interval=SAMPLE_INTERVAL_S)
    profiler.start()
    batch()
    profiler.stop()
    session = profiler.last_session
    layers = split_by_layer(session.frame_records if session else [])
    profiled = sum(layers.values()) or 1.0
    wall = statistics.median(walls)
    return {
        "wall_ms": round(wall, 3),
        "cpu_ms": round(statistics.median(cpus), 3),
        "profiled_ms": round(profiled / requests * 1000, 3),
        # Each layer's share of the samples, in ms of the unprofiled request.
        "layers_ms": {
            name: round(seconds / profiled * wall, 3) for name, seconds in layers.items()
        },
        "requests": requests,
    }


def render(results: dict[str, dict[str, Any]]) -> str:
    keys = list(results)
    lines = [
        "| layer | " + " | ".join(f"{key} ms/request" for key in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for layer in LAYERS:
        values = [results[key]["layers_ms"].get(layer, 0.0) for key in keys]
        lines.append(f"| {layer} | " + " | ".join(f"{value:.2f}" for value in values) + " |")
    for label, field in (
        ("**total** (wall, unprofiled)", "wall_ms"),
        ("of which CPU (process time)", "cpu_ms"),
        ("profiled wall (sampling overhead in)", "profiled_ms"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{results[k][field]:.2f}" for k in keys) + " |")
    return "\n".join(lines)


def workload_keys(requested: list[str] | None, known: Collection[str]) -> list[str]:
    """The workloads to profile: those requested (W1 and W5 unless any is), each one known."""
    keys = requested or ["W1", "W5"]
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise BenchError(f"unknown workload {', '.join(unknown)}; known: {', '.join(known)}")
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="CPU per request by layer, of W1 and W5 or of the workloads named"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workload", action="append", help="a workload key (default W1, W5)")
    known, rest = parser.parse_known_args(argv)
    options = run.parse_options(rest)
    # As the benchmark's server: one user sends every request.
    os.environ["THROTTLE_USER"] = options.throttle_user
    configure_django(options.database_url, options.redis_url)
    dataset = ensure_dataset(options.database_url, options.scale)
    import psycopg2
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    with psycopg2.connect(options.database_url) as conn, conn.cursor() as cur:
        workloads = {w.key: w for w in run.build_workloads(dataset, cur)}
    conn.close()
    user = User.objects.get(username=dataset["organizations"][0]["clinician"])
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=run.TOKEN_LIFETIME)
    keys = workload_keys(known.workload, workloads)
    results = {
        key: profile_workload([t.path for t in workloads[key].targets], str(token), known.requests)
        for key in keys
    }
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
