"""`make bench`: dataset, servers, workloads W1-W11, the plain DRF baseline, report.

    python -m bench.run [--scale 1.0] [--seconds 30] [--database-url URL] [--redis-url URL]

1. Makes the dataset (bench/generate.py) unless the database already holds that scale.
2. Checks in-process, through Django's test client, that each workload answers 200 and that its
   SQL query count does not change with the page size (1 vs 100); captures the SQL of W1 and W5.
3. Starts the API (`pms.wsgi`) and the plain DRF build (`bench.plain.wsgi`) with the server of
   `--server` (bench/servers.py; DEBUG off) against the bench database and Redis on free
   loopback ports; one user signs in through `/api/auth/token/`, the others' JWTs are minted.
4. For each workload: saturation throughput (closed loop), then latency in an open loop at a
   fraction (default half) of that throughput, coordinated omission corrected.
5. For W1 and W5: latency of one request at a time, divided by the latency of the same SQL run
   directly with psycopg2 (the floor).
6. W1, W2, W3 and W5 against the plain build, alternating rounds (bench/baseline.py); then W9-W11
   (bench/scenarios.py).
7. Runs a full Bulk Data export of the largest clinic and measures its memory (bench/export.py).
8. Writes the report (Markdown + JSON) and exits non-zero if any request failed or any query
   count varied with the page size. Timings never fail the run: the report says which target
   was met.
"""

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg2

from bench import baseline, loadgen, scenarios
from bench import export as bench_export
from bench.generate import (
    BASE_DIR,
    BENCH_PASSWORD,
    DEFAULT_DATABASE_URL,
    BenchError,
    configure_django,
    django_env,
    ensure_dataset,
    log,
    make_plain_table,
)
from bench.loadgen import Result, Target
from bench.servers import HOST, PROXY_HEADERS, SERVER, App, Served, Server, serve

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
PAGE_SIZE = 20
SAMPLE_SIZE = 500
# Requests timed one at a time for the floor, per second of --seconds (at most 300).
FLOOR_REPEATS_PER_SECOND = 25


@dataclass
class Workload:
    key: str
    name: str
    targets: list[Target]
    # The target of the issue, as text, and the p95 limit it sets (None: report only).
    target: str = "report only"
    p95_limit_ms: float | None = None
    paginated: bool = False
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_path(self) -> str:
        return self.targets[0].path


@dataclass
class Options:
    database_url: str
    redis_url: str
    scale: float
    seconds: float
    saturation_seconds: float
    rate_fraction: float
    connections: int
    workers: int
    threads: int
    report: Path
    throttle_user: str
    saturation_tool: str
    server: str
    plain_rounds: int

    @property
    def http_server(self) -> Server:
        return Server(self.server, self.workers, self.threads)


def parse_options(argv: list[str] | None) -> Options:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="PMS API benchmark (make bench)")
    parser.add_argument("--database-url", default=env("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=env("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--scale", type=float, default=float(env("BENCH_SCALE", "1.0")))
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(env("BENCH_SECONDS", "30")),
        help="open-loop duration per workload",
    )
    parser.add_argument(
        "--saturation-seconds",
        type=float,
        default=float(env("BENCH_SATURATION_SECONDS", "0")),
        help="closed-loop duration per workload (default: half of --seconds, 0.5 to 10)",
    )
    parser.add_argument(
        "--rate-fraction", type=float, default=float(env("BENCH_RATE_FRACTION", "0.5"))
    )
    parser.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "16")))
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "4")))
    parser.add_argument("--report", default=env("BENCH_REPORT", str(BASE_DIR / "bench/report")))
    # The load comes from a few users, so their limit is high; its window is a minute, as in
    # production (THROTTLE_USER, 1200/min). DRF's throttle stores the time of every request in
    # the window and rewrites that list on each request: with an hour's window, a run's load
    # users reached thousands of entries each (10,000 cost 0.48 ms of CPU per request against
    # 0.18 ms empty; docs/performance.md, "Shortcuts measured").
    parser.add_argument(
        "--throttle-user",
        default=env("BENCH_THROTTLE_USER", "100000/min"),
        help="the server's per-user rate limit",
    )
    parser.add_argument(
        "--saturation-tool",
        choices=["auto", "python", "wrk"],
        default=env("BENCH_SATURATION_TOOL", "auto"),
    )
    parser.add_argument(
        "--server",
        choices=["gthread", "sync", "granian"],
        default=env("BENCH_SERVER", SERVER),
        help="the HTTP server (bench/servers.py measures them)",
    )
    parser.add_argument(
        "--plain-rounds",
        type=int,
        default=int(env("BENCH_PLAIN_ROUNDS", str(baseline.ROUNDS))),
        help="alternating rounds against the plain DRF build (the CI smoke run needs one)",
    )
    args = parser.parse_args(argv)
    saturation = args.saturation_seconds or min(10.0, max(0.5, args.seconds / 2))
    return Options(
        database_url=args.database_url,
        redis_url=args.redis_url,
        scale=args.scale,
        seconds=args.seconds,
        saturation_seconds=saturation,
        rate_fraction=args.rate_fraction,
        connections=args.connections,
        workers=args.workers,
        threads=args.threads,
        report=Path(args.report),
        throttle_user=args.throttle_user,
        saturation_tool=args.saturation_tool,
        server=args.server,
        plain_rounds=args.plain_rounds,
    )


# --- dataset samples and workloads -------------------------------------------------------------


def sample_ids(cur: Any, organization_id: int) -> tuple[list[int], list[int], int]:
    """Deterministic samples of the organization's active patients (any, and with documents)
    and the number of its active patients."""
    cur.execute(
        "SELECT id FROM patient_patient WHERE organization_id = %s AND is_active "
        "ORDER BY md5(id::text) LIMIT %s",
        [organization_id, SAMPLE_SIZE],
    )
    patients = [row[0] for row in cur.fetchall()]
    cur.execute(
        """
        SELECT d.patient_id FROM (
            SELECT DISTINCT patient_id FROM document_document
            WHERE organization_id = %s AND is_active
        ) d JOIN patient_patient p ON p.id = d.patient_id AND p.is_active
        ORDER BY md5(d.patient_id::text) LIMIT %s
        """,
        [organization_id, SAMPLE_SIZE],
    )
    with_documents = [row[0] for row in cur.fetchall()]
    cur.execute(
        "SELECT count(*) FROM patient_patient WHERE organization_id = %s AND is_active",
        [organization_id],
    )
    row = cur.fetchone()
    return patients, with_documents, int(row[0]) if row else 0


def build_workloads(dataset: dict[str, Any], cur: Any) -> list[Workload]:
    """W1-W8 against the largest organization; `cur` reads the samples of ids."""
    organization_id = dataset["organizations"][0]["organization_id"]
    patients, with_documents, active = sample_ids(cur, organization_id)
    terms = dataset["search_terms"]
    from pms import pagination

    # W2: the deepest page the API serves (its start under pagination.MAX_RESULTS), or the last
    # page of a smaller dataset.
    deepest = (pagination.MAX_RESULTS - 1) // PAGE_SIZE + 1
    deep_page = max(1, min(deepest, -(-active // PAGE_SIZE)))
    base = "/api/patient/patients/"

    def one(path: str) -> list[Target]:
        return [Target(path)]

    def each(template: str, ids: list[int]) -> list[Target]:
        return [Target(template.format(id=pk)) for pk in ids]

    search_target = "p95 < 25 ms"
    return [
        Workload(
            "W1",
            "patient list, page 1",
            one(f"{base}?page_size={PAGE_SIZE}"),
            "p95 < 15 ms at half of saturation; saturation >= 500 rps",
            15.0,
            paginated=True,
        ),
        Workload(
            "W2",
            f"patient list, deep page {deep_page}",
            one(f"{base}?page_size={PAGE_SIZE}&page={deep_page}"),
            "p95 <= 2 x W1 p95",
            paginated=True,
        ),
        Workload(
            "W3 rare",
            f"search={terms['rare']['term']}",
            one(f"{base}?search={terms['rare']['term']}&page_size={PAGE_SIZE}"),
            search_target,
            25.0,
            paginated=True,
        ),
        Workload(
            "W3 medium",
            f"search={terms['medium']['term']}",
            one(f"{base}?search={terms['medium']['term']}&page_size={PAGE_SIZE}"),
            search_target,
            25.0,
            paginated=True,
        ),
        Workload(
            "W3 common",
            f"search={terms['common']['term']}",
            one(f"{base}?search={terms['common']['term']}&page_size={PAGE_SIZE}"),
            "p95 < 50 ms",
            50.0,
            paginated=True,
        ),
        Workload(
            "W3 typo",
            f"/search/?q={terms['typo']['term']}",
            one(f"{base}search/?q={terms['typo']['term']}&page_size={PAGE_SIZE}"),
            search_target,
            25.0,
            paginated=True,
        ),
        Workload(
            "W4",
            "gender + age range + ordering=full_name",
            one(f"{base}?gender=F&age_min=30&age_max=60&ordering=full_name&page_size={PAGE_SIZE}"),
            paginated=True,
        ),
        Workload("W5", "patient detail", each(base + "{id}/", patients), "p95 < 5 ms", 5.0),
        Workload(
            "W6",
            "documents of one patient",
            each("/api/document/documents/by_patient/?patient_id={id}", with_documents),
            paginated=True,
        ),
        Workload(
            "W7 org",
            "document stats, organization",
            one("/api/document/documents/stats/"),
            "p95 < 20 ms",
            20.0,
        ),
        Workload(
            "W7 patient",
            "document stats, one patient",
            each("/api/document/documents/stats/?patient={id}", with_documents),
            "p95 < 20 ms",
            20.0,
        ),
        Workload(
            "W8",
            "patient summary",
            each(base + "{id}/summary/", with_documents),
            "p95 < 20 ms",
            20.0,
        ),
    ]


def with_page_size(path: str, page_size: int, count: int) -> str:
    """`path` at another page size; a `page` keeps its offset, within the `count` results."""
    parts = urlsplit(path)
    query = dict(parse_qsl(parts.query))
    offset = (int(query.get("page", "1")) - 1) * int(query.get("page_size", str(PAGE_SIZE)))
    query["page_size"] = str(page_size)
    if "page" in query:
        last_page = max(1, -(-count // page_size))
        query["page"] = str(min(last_page, offset // page_size + 1))
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- in-process checks: status, query counts, the SQL of the floor ------------------------------


def check_in_process(workloads: list[Workload], username: str) -> dict[str, list[str]]:
    """Runs each workload's first request through Django's test client (real middleware, real
    JWT); records status, `count` and queries, and for paginated ones the queries at page
    sizes 1 and 100. Returns the SQL of W1 and W5 for the floor."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User

    user = User.objects.get(username=username)
    token = str(RefreshToken.for_user(user).access_token)
    client = Client(headers={"Authorization": f"Bearer {token}"})
    captured: dict[str, list[str]] = {}

    def run(path: str) -> tuple[int, Any, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, secure=True)
        body = response.json() if response["Content-Type"].startswith("application/json") else {}
        return response.status_code, body, [query["sql"] for query in queries.captured_queries]

    client.get(workloads[0].sample_path, secure=True)  # opens the connection outside the capture
    for workload in workloads:
        started = time.perf_counter()
        status, body, statements = run(workload.sample_path)
        check: dict[str, Any] = {
            "status": status,
            "queries": len(statements),
            # The first request, in-process: caches empty (organization stats computed).
            "first_request_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if isinstance(body, dict) and "count" in body:
            check["count"] = body["count"]
        if workload.paginated:
            count = int(check.get("count", 0))
            by_size = {
                size: len(run(with_page_size(workload.sample_path, size, count))[2])
                for size in (1, 100)
            }
            check["queries_by_page_size"] = by_size
            check["constant"] = len(set(by_size.values())) == 1
        workload.result["in_process"] = check
        if workload.key in ("W1", "W5"):
            captured[workload.key] = statements
    return captured


def measure_floor(database_url: str, statements: list[str], repeats: int) -> dict[str, float]:
    """The statements run one after another on one psycopg2 connection in autocommit, as Django
    runs them (each write its own transaction); latency of the whole sequence, in ms."""
    timings = []
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for _ in range(repeats + 10):
                started = time.perf_counter()
                for statement in statements:
                    cur.execute(statement)
                    if cur.description is not None:
                        cur.fetchall()
                timings.append(time.perf_counter() - started)
    finally:
        conn.close()
    timings = sorted(timings[10:])
    return {
        "p50_ms": round(statistics.median(timings) * 1000, 3),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1] * 1000, 3),
        "statements": len(statements),
    }


# --- the server ------------------------------------------------------------------------------


def clear_bench_cache(redis_url: str) -> None:
    """Forgets the throttle and lockout state of earlier runs (keys of the bench prefix only)."""
    if not redis_url:
        return
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    keys = list(client.scan_iter(match="pms-bench:*", count=1000))
    if keys:
        client.delete(*keys)


def server_env(options: Options, settings_module: str = "pms.settings.base") -> dict[str, str]:
    return {
        **os.environ,
        # The SECRET_KEY of this process (set by configure_django): one key for the whole run,
        # so the plain build accepts the API's tokens.
        **django_env(options.database_url, options.redis_url),
        "DJANGO_SETTINGS_MODULE": settings_module,
        # Django, not the server, reads X-Forwarded-Proto (granian does not set the scheme).
        "NUM_PROXIES": "1",
        "THROTTLE_USER": options.throttle_user,
        # A run outlasts the default 5-minute access token.
        "JWT_ACCESS_MINUTES": "240",
    }


def http_request(
    port: int, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json", **dict(PROXY_HEADERS)}
    try:
        connection.request(method, path, json.dumps(body) if body else None, headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload.startswith(b"{") else payload
    finally:
        connection.close()


# Lifetime of the tokens the run mints: a run outlasts the default 5-minute access token.
TOKEN_LIFETIME = timedelta(hours=4)


def obtain_tokens(port: int, usernames: list[str]) -> list[str]:
    """Access JWTs: the first user signs in through the endpoint (so the sign-in path is
    exercised); the others' tokens are minted in-process with the server's key, which costs no
    password hash each (~0.4 s of CPU apiece on the shared cores)."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    status, body = http_request(
        port, "POST", "/api/auth/token/", {"username": usernames[0], "password": BENCH_PASSWORD}
    )
    if status != 200:
        raise BenchError(f"sign-in of a bench user failed with HTTP {status}")
    tokens = [body["access"]]
    for user in User.objects.filter(username__in=usernames[1:]).order_by("username"):
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=TOKEN_LIFETIME)
        tokens.append(str(token))
    return tokens


def authorized(targets: list[Target], tokens: list[str]) -> list[Target]:
    """The requests of `targets` spread over the users' tokens, as a clinic's staff would."""
    count = max(len(targets), len(tokens))
    return [
        replace(
            targets[k % len(targets)],
            headers=(("Authorization", f"Bearer {tokens[k % len(tokens)]}"), *PROXY_HEADERS),
        )
        for k in range(count)
    ]


def authorize(workloads: list[Workload], tokens: list[str]) -> None:
    for workload in workloads:
        workload.targets = authorized(workload.targets, tokens)


# --- measuring -------------------------------------------------------------------------------


def saturation(options: Options, port: int, targets: list[Target]) -> Result:
    # wrk runs whole seconds: a shorter saturation (the CI smoke run) uses the Python client.
    if options.saturation_tool == "wrk" or (
        options.saturation_tool == "auto"
        and shutil.which("wrk")
        and options.saturation_seconds >= 1
    ):
        return wrk_saturation(options, port, targets)
    return loadgen.run_closed_loop(
        HOST,
        port,
        targets,
        connections=options.connections,
        duration=options.saturation_seconds,
    )


def wrk_saturation(options: Options, port: int, targets: list[Target]) -> Result:
    """Closed-loop throughput with wrk (C, lighter on the shared CPUs than the Python client).
    One wrk thread per lane of the load client (bench/loadgen.py): a Lua script's state is per
    thread, so each thread cycles through its own sender's requests only."""
    split = loadgen.lanes(targets, options.connections)
    lines = ["local lanes = {"]
    for lane in split:
        lines.append("  {")
        for target in lane:
            headers = ", ".join(f'["{name}"] = "{value}"' for name, value in target.headers)
            lines.append(f'    {{path = "{target.path}", headers = {{{headers}}}}},')
        lines.append("  },")
    lines += [
        "}",
        "local threads = 0",
        "setup = function(thread)",
        "  threads = threads + 1",
        '  thread:set("lane", threads)',
        "end",
        "local i = 0",
        "request = function()",
        "  local requests = lanes[lane]",
        "  i = i % #requests + 1",
        '  return wrk.format("GET", requests[i].path, requests[i].headers)',
        "end",
        "done = function(summary, latency, requests)",
        '  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests,',
        "    summary.duration, summary.errors.status, summary.errors.connect,",
        "    summary.errors.read + summary.errors.write, summary.errors.timeout))",
        "end",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines))
    try:
        seconds = max(1, round(options.saturation_seconds))
        output = subprocess.run(
            [
                "wrk",
                "-t",
                str(len(split)),
                "-c",
                # wrk gives each thread connections // threads.
                str(options.connections // len(split) * len(split)),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                f"http://{HOST}:{port}/",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"^BENCH (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if match is None:
        raise BenchError("wrk printed no summary")
    total, duration_us, status_errors, *socket_errors = (int(value) for value in match.groups())
    result = Result(mode="closed-loop (wrk)", intended_rate=None, duration_s=duration_us / 1e6)
    result.sent = result.completed = total
    result.errors = status_errors + sum(socket_errors)
    if result.errors:
        result.first_error = f"wrk: {status_errors} non-2xx, {sum(socket_errors)} socket errors"
    result.statuses = {"non-2xx": status_errors, "socket": sum(socket_errors)}
    return result


def warm_up(port: int, targets: list[Target]) -> None:
    """A few requests first; any answer but a success stops the run (wrk counts only 4xx and
    5xx as errors: a redirect would otherwise pass for throughput)."""
    result = loadgen.sequential_latencies(HOST, port, targets, count=5)
    if result.errors:
        raise BenchError(f"{targets[0].path}: {result.first_error} during the warm-up")


def measure(options: Options, port: int, workload: Workload) -> None:
    pause = min(1.0, options.seconds / 10)
    warm_up(port, workload.targets)
    saturated = saturation(options, port, workload.targets)
    time.sleep(pause)
    rate = max(1.0, round(saturated.throughput * options.rate_fraction, 1))
    latency = loadgen.run_open_loop(
        HOST,
        port,
        workload.targets,
        rate=rate,
        duration=options.seconds,
        connections=options.connections,
    )
    workload.result["saturation"] = saturated.summary()
    workload.result["open_loop"] = latency.summary()
    summary = latency.summary()["latency_ms"]
    log(
        f"{workload.key:<11} saturation {saturated.throughput:7.1f} rps | at {rate:6.1f} rps: "
        f"p50 {summary['p50']:.2f} p95 {summary['p95']:.2f} p99 {summary['p99']:.2f} ms, "
        f"errors {latency.errors + saturated.errors}"
    )
    time.sleep(pause)


def measure_floors(
    options: Options, port: int, workloads: list[Workload], statements: dict[str, list[str]]
) -> dict[str, Any]:
    floors = {}
    repeats = max(30, min(300, round(options.seconds * FLOOR_REPEATS_PER_SECOND)))
    for workload in workloads:
        if workload.key not in statements:
            continue
        api = loadgen.sequential_latencies(HOST, port, workload.targets, count=repeats)
        floor = measure_floor(options.database_url, statements[workload.key], repeats)
        api_p50 = api.percentile_ms(50)
        floors[workload.key] = {
            "api_p50_ms": round(api_p50, 3),
            "api_p95_ms": round(api.percentile_ms(95), 3),
            "api_errors": api.errors,
            "sql_p50_ms": floor["p50_ms"],
            "sql_p95_ms": floor["p95_ms"],
            "statements": floor["statements"],
            "sql": statements[workload.key],
            "ratio_p50": round(api_p50 / floor["p50_ms"], 2) if floor["p50_ms"] else None,
        }
        log(
            f"{workload.key} one at a time: API p50 {api_p50:.2f} ms, SQL floor "
            f"{floor['p50_ms']:.2f} ms ({floor['statements']} statements), "
            f"ratio {floors[workload.key]['ratio_p50']}"
        )
    return floors


# --- report ----------------------------------------------------------------------------------


def machine_info(database_url: str) -> dict[str, Any]:
    cpu_model = ""
    memory_gib = 0.0
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        cpu_model = found.group(1).strip() if found else ""
        meminfo = Path("/proc/meminfo").read_text()
        found = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
        memory_gib = round(int(found.group(1)) / 1024 / 1024, 1) if found else 0.0
    except OSError:
        pass
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        row = cur.fetchone()
        cur.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN "
            "('shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'jit')"
        )
        pg_settings = {name: f"{value}{unit or ''}" for name, value, unit in cur.fetchall()}
    conn.close()
    import django
    import rest_framework

    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "postgresql": row[0] if row else "",
        "postgresql_settings": pg_settings,
        "python": platform.python_version(),
        "django": django.get_version(),
        "djangorestframework": rest_framework.VERSION,
        "kernel": platform.release(),
    }


def verdict(workload: Workload, w1_p95: float | None) -> str:
    errors = workload.result["open_loop"]["errors"] + workload.result["saturation"]["errors"]
    p95 = workload.result["open_loop"]["latency_ms"]["p95"]
    met = True
    if workload.key == "W1":
        met = workload.result["saturation"]["throughput_rps"] >= 500
    if workload.key == "W2":
        if w1_p95 is None:
            return "—"
        met = p95 <= 2 * w1_p95
    elif workload.p95_limit_ms is None:
        return "—" if not errors else "errors"
    if workload.p95_limit_ms is not None:
        met = met and p95 < workload.p95_limit_ms
    return ("yes" if met else "**no**") + (" (errors)" if errors else "")


def render_markdown(report: dict[str, Any], workloads: list[Workload]) -> str:
    machine, dataset, run = report["machine"], report["dataset"], report["settings"]
    w1 = next((w for w in workloads if w.key == "W1"), None)
    w1_p95 = w1.result["open_loop"]["latency_ms"]["p95"] if w1 and w1.result else None
    lines = [
        "# Benchmark report",
        "",
        f"Run {report['finished_at']} with `{report['command']}`.",
        "",
        f"**Machine**: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB RAM, PostgreSQL {machine['postgresql']}, "
        f"Python {machine['python']}, Django {machine['django']}; app, database and load client "
        "share the machine.",
        f"**Server**: {report['server']['name']}, DEBUG off, Redis cache "
        f"{'on' if report['server']['redis'] else 'off'}; the plain DRF build (bench/plain) "
        "is served the same way on another port, from its own copy of the patient table with "
        "a stock model's indexes only.",
        f"**Dataset**: {dataset['patients']:,} patients, {dataset['documents']:,} documents, "
        f"{len(dataset['organizations'])} organizations; requests come from the largest "
        f"({dataset['search_terms']['organization_patients']:,} active patients).",
        f"**Method**: saturation = closed loop, {run['connections']} connections, "
        f"{run['saturation_seconds']:g} s ({run['saturation_tool']}); "
        f"latency = open loop at {run['rate_fraction']:g} x saturation for "
        f"{run['seconds']:g} s, measured from the intended send time "
        "(coordinated omission corrected, HdrHistogram).",
        "",
        "| Workload | Request | Saturation rps | vs plain | Rate rps | p50 ms | p95 ms | p99 ms "
        "| max ms | Errors | SQL/req | Target | Met? |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for workload in workloads:
        if not workload.result.get("open_loop"):
            continue
        sat, opened = workload.result["saturation"], workload.result["open_loop"]
        latency = opened["latency_ms"]
        check = workload.result.get("in_process", {})
        queries = str(check.get("queries", "?"))
        if "constant" in check:
            queries += "" if check["constant"] else " (varies!)"
        ratio = workload.result.get("plain", {}).get("ratio")
        lines.append(
            f"| {workload.key} | {workload.name} | {sat['throughput_rps']:.0f} "
            f"| {f'{ratio:g}x' if ratio else '—'} | {opened['intended_rate']:.0f} "
            f"| {latency['p50']:.2f} | {latency['p95']:.2f} "
            f"| {latency['p99']:.2f} | {latency['max']:.2f} "
            f"| {opened['errors'] + sat['errors']} | {queries} "
            f"| {workload.target} | {verdict(workload, w1_p95)} |"
        )
    lines += [
        "",
        "**Floor** (one request at a time; the same SQL timed directly with psycopg2):",
        "",
    ]
    lines += [
        "| Workload | API p50 ms | SQL p50 ms | statements | API / SQL |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, floor in report["floors"].items():
        lines.append(
            f"| {key} | {floor['api_p50_ms']:.2f} | {floor['sql_p50_ms']:.2f} "
            f"| {floor['statements']} | {floor['ratio_p50']} |"
        )
    lines += render_plain(workloads)
    lines += render_scenarios(report["scenarios"])
    terms = dataset["search_terms"]
    counts = {w.key: w.result.get("in_process", {}).get("count") for w in workloads}
    lines += [
        "",
        f"Search terms: rare `{terms['rare']['term']}` ({counts.get('W3 rare')} matches), "
        f"medium `{terms['medium']['term']}` ({counts.get('W3 medium')}), common "
        f"`{terms['common']['term']}` ({counts.get('W3 common')}), typo `{terms['typo']['term']}` "
        f"for `{terms['typo']['of']}` ({counts.get('W3 typo')}). Counts stop at "
        f"{report['settings'].get('count_limit')} (`X-Count-Exact: false` past it).",
        "",
    ]
    stats = next((w for w in workloads if w.key == "W7 org"), None)
    if stats is not None and "in_process" in stats.result:
        lines += [
            "W7 org is served from the stats cache (invalidated by every write); its first, "
            f"uncached request took {stats.result['in_process']['first_request_ms']:.0f} ms "
            "in-process.",
            "",
        ]
    missed = missed_targets(workloads, w1_p95)
    if missed:
        lines += ["**Targets missed** (docs/performance.md explains why):", ""]
        lines += [f"- {line}" for line in missed]
        lines.append("")
    return "\n".join(lines)


def render_plain(workloads: list[Workload]) -> list[str]:
    compared = [w for w in workloads if "plain" in w.result]
    if not compared:
        return []
    rounds = len(compared[0].result["plain"]["api_rps"])
    lines = [
        "",
        f"**Against the plain DRF build** (stock DRF parts on its own copy of the patients, "
        f"without the API's indexes; saturation, {rounds} alternating rounds, each followed by "
        "a wait for the machine to idle, medians; the ratio is the drift-resistant figure; CPU "
        "is ms per request of the server + PostgreSQL + Redis, bench/cpu.py, — where a round "
        "answered under 10 requests per connection):",
        "",
        "| Workload | this API rps | plain DRF rps | ratio | rounds (API / plain) "
        "| API CPU ms | plain CPU ms |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for workload in compared:
        plain = workload.result["plain"]
        each = ", ".join(
            f"{a:.0f}/{p:.0f}" for a, p in zip(plain["api_rps"], plain["plain_rps"], strict=True)
        )
        spent = [_cpu_split(plain.get("cpu_ms", {}).get(side)) for side in ("api", "plain")]
        lines.append(
            f"| {workload.key} | {plain['api_median_rps']:.0f} | {plain['plain_median_rps']:.0f} "
            f"| {plain['ratio']}x | {each} | {spent[0]} | {spent[1]} |"
        )
    return lines


def _cpu_split(spent: dict[str, float] | None) -> str:
    if not spent:
        return "—"
    return (
        f"{spent['total']:.2f} ({spent['server']:.2f} + {spent['postgres']:.2f} "
        f"+ {spent['redis']:.2f})"
    )


def render_scenarios(results: dict[str, Any]) -> list[str]:
    w9, w10, w11 = results["W9"], results["W10"], results["W11"]
    lines = [
        "",
        f"**W9** (writes, {scenarios.WRITE_RATE:g} rps open loop, {w9['patients']} patients, "
        "deleted after the run):",
        "",
        "| Request | p50 ms | p95 ms | p99 ms | max ms | Errors | Target | Met? |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for step, name, limit in (
        ("create", "POST /patients/ (duplicate check)", 30.0),
        ("patch", "PATCH /patients/{id}/ with If-Match", None),
    ):
        measured = w9[step]
        latency = measured["latency_ms"]
        met = "—" if limit is None else ("yes" if latency["p95"] < limit else "**no**")
        lines.append(
            f"| {name} | {latency['p50']:.2f} | {latency['p95']:.2f} | {latency['p99']:.2f} "
            f"| {latency['max']:.2f} | {measured['errors']} "
            f"| {'p95 < 30 ms' if limit else 'report only'} | {met} |"
        )
    lines += [
        "",
        f"**W10** (crafted ranked searches, each {scenarios.SEARCH_REPEATS} times alone; 429 and "
        "503 `query_timeout` are clean refusals):",
        "",
        "| Request | p50 ms | max ms | statuses | clean | errors | < 250 ms or clean? |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for term, measured in w10.items():
        slow = [s for s in measured["statuses"] if 200 <= s < 300]
        bounded = measured["max_ms"] < 250 or (not slow and not measured["errors"])
        lines.append(
            f"| `/search/?q={term}` | {measured['p50_ms']:.0f} | {measured['max_ms']:.0f} "
            f"| {', '.join(map(str, measured['statuses']))} | {measured['clean']} "
            f"| {measured['errors']} | {'yes' if bounded else '**no**'} |"
        )
    quiet, starved = w11["quiet"]["latency_ms"], w11["starved"]["latency_ms"]
    searches = w11["searches"]
    starvation_met = "yes" if w11["ratio_p95"] is not None and w11["ratio_p95"] <= 2 else "**no**"
    lines += [
        "",
        f"**W11** (starvation): another user's W5 at {scenarios.STARVED_RATE:g} rps, quiet: "
        f"p50 {quiet['p50']:.2f} ms, p95 {quiet['p95']:.2f} ms; while one user runs "
        f"{scenarios.STARVING_SEARCHES} W10 searches at a time: p50 {starved['p50']:.2f} ms, "
        f"p95 {starved['p95']:.2f} ms, {w11['starved']['errors']} errors; ratio of p95s "
        f"{w11['ratio_p95']} (target <= 2: {starvation_met}). "
        f"Searches answered: {searches['ok']} ok, {searches['clean']} clean refusals, "
        f"{searches['error']} errors; each refused one sent again after its Retry-After.",
    ]
    flood = w11["flood"]
    lines[-1] += (
        f" The same searcher resending refused searches at once (a flood, which production's "
        f"per-user rate limit bounds and the bench's raised one does not): p95 "
        f"{flood['starved']['latency_ms']['p95']:.2f} ms, ratio {flood['ratio_p95']}; "
        f"{flood['searches']['ok']} ok, {flood['searches']['clean']} clean refusals, "
        f"{flood['searches']['error']} errors."
    )
    return lines


def missed_targets(workloads: list[Workload], w1_p95: float | None) -> list[str]:
    """One line with the numbers of each target the run missed."""
    lines = []
    for workload in workloads:
        if not workload.result.get("open_loop") or "no" not in verdict(workload, w1_p95):
            continue
        p95 = workload.result["open_loop"]["latency_ms"]["p95"]
        rps = workload.result["saturation"]["throughput_rps"]
        if workload.key == "W2" and w1_p95:
            lines.append(f"W2: p95 {p95:.1f} ms = {p95 / w1_p95:.1f} x W1 p95 (target <= 2 x).")
            continue
        if workload.key == "W1" and rps < 500:
            lines.append(f"W1: saturation {rps:.0f} rps, {500 / rps:.1f} x short of 500 rps.")
        limit = workload.p95_limit_ms
        if limit is not None and p95 >= limit:
            rate = workload.result["open_loop"]["intended_rate"]
            lines.append(
                f"{workload.key}: p95 {p95:.1f} ms at {rate:.0f} rps vs < {limit:g} ms "
                f"({p95 / limit:.1f} x)."
            )
    return lines


@dataclass
class Setup:
    """What a run measures with: the dataset, its workloads and their in-process checks."""

    dataset: dict[str, Any]
    workloads: list[Workload]
    statements: dict[str, list[str]]
    failures: list[str]

    @property
    def largest(self) -> dict[str, Any]:
        return dict(self.dataset["organizations"][0])

    @property
    def usernames(self) -> list[str]:
        return list(self.largest["load_users"] or [self.largest["clinician"]])


def prepare(options: Options) -> Setup:
    """Django, the dataset, a fresh audit trail and the in-process checks."""
    configure_django(options.database_url, options.redis_url)
    dataset = ensure_dataset(options.database_url, options.scale)
    with psycopg2.connect(options.database_url) as conn, conn.cursor() as cur:
        workloads = build_workloads(dataset, cur)
        # Each run starts from the same trail, so runs compare.
        cur.execute("TRUNCATE audit_auditevent")
    conn.close()
    with scenarios.cursor(options.database_url) as cur:
        scenarios.delete_written(cur)
    clear_bench_cache(options.redis_url)
    statements = check_in_process(workloads, dataset["organizations"][0]["clinician"])
    failures = [
        f"{w.key}: HTTP {w.result['in_process']['status']}"
        for w in workloads
        if w.result["in_process"]["status"] != 200
    ] + [
        f"{w.key}: queries vary with page size {w.result['in_process']['queries_by_page_size']}"
        for w in workloads
        if w.result["in_process"].get("constant") is False
    ]
    clear_bench_cache(options.redis_url)
    return Setup(dataset, workloads, statements, failures)


def compare_with_plain(
    options: Options, api: Served, plain: Served, workloads: list[Workload]
) -> None:
    """Each workload the plain build serves, against it (bench/baseline.py); each round lasts
    half the saturation time, so the comparison costs three saturations per workload."""
    rounds = replace(options, saturation_seconds=options.saturation_seconds / 2)
    for workload in workloads:
        if workload.key not in baseline.PLAIN_KEYS:
            continue
        warm_up(plain.port, workload.targets)
        compared = baseline.compare(
            lambda target_port, targets: saturation(rounds, target_port, targets),
            api,
            plain,
            workload.targets,
            options.plain_rounds,
            options.connections,
            # Long enough for 16 of the plain build's slowest requests (~0.4 s each at 1M).
            drain_limit_s=max(1.0, 2 * rounds.saturation_seconds),
        )
        workload.result["plain"] = compared
        log(
            f"{workload.key:<11} API {compared['api_median_rps']:7.1f} rps, plain "
            f"{compared['plain_median_rps']:7.1f} rps: ratio {compared['ratio']}"
        )


def run_scenarios(options: Options, port: int, setup: Setup, tokens: list[str]) -> dict[str, Any]:
    """W9-W11 (bench/scenarios.py), after the reads: W9 adds patients, deleted at the end."""
    searcher = obtain_tokens(port, [setup.largest["clinician"]])[0]
    detail = next(w for w in setup.workloads if w.key == "W5")
    try:
        w9 = scenarios.run_w9(port, tokens[0], options.database_url, options.seconds)
    finally:
        with scenarios.cursor(options.database_url) as cur:
            deleted = scenarios.delete_written(cur)
    w9["deleted"] = deleted
    create, patch = w9["create"]["latency_ms"], w9["patch"]["latency_ms"]
    log(f"W9 create p95 {create['p95']:.2f} ms, PATCH p95 {patch['p95']:.2f} ms")
    w10 = scenarios.run_w10(port, searcher)
    for term, measured in w10.items():
        log(f"W10 q={term}: p50 {measured['p50_ms']:.0f} ms, statuses {measured['statuses']}")
    other_user = authorized([Target(t.path) for t in detail.targets], tokens[-1:])
    w11 = scenarios.run_w11(port, searcher, other_user, options.seconds)
    log(
        f"W11 other user's W5 p95: quiet {w11['quiet']['latency_ms']['p95']:.2f} ms, during 8 "
        f"searches {w11['starved']['latency_ms']['p95']:.2f} ms (x{w11['ratio_p95']}); "
        f"searches {w11['searches']}; as a flood x{w11['flood']['ratio_p95']}, "
        f"{w11['flood']['searches']}"
    )
    return {"W9": w9, "W10": w10, "W11": w11}


def scenario_failures(results: dict[str, Any]) -> list[str]:
    failures = [
        f"W9 {step}: {results['W9'][step]['errors']} failed requests "
        f"({results['W9'][step]['first_error']})"
        for step in ("create", "patch")
        if results["W9"][step]["errors"]
    ]
    failures += [
        f"W10 q={term}: statuses {measured['statuses']}"
        for term, measured in results["W10"].items()
        if measured["errors"]
    ]
    for label, w11 in (("W11", results["W11"]), ("W11 flood", results["W11"]["flood"])):
        if w11["searches"]["error"]:
            failures.append(f"{label}: {w11['searches']['error']} searches failed")
    return failures


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    started = time.perf_counter()
    try:
        setup = prepare(options)
        # Only this run serves the plain build (bench.servers prepares too).
        make_plain_table(options.database_url)
    except BenchError as error:
        log(str(error))
        return 2
    from pms import pagination

    dataset, workloads, statements, failures = (
        setup.dataset, setup.workloads, setup.statements, setup.failures
    )  # fmt: skip
    log_dir = BASE_DIR / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = options.http_server
    api = App(server, server_env(options), log_dir / "server.log")
    plain = App(
        server,
        server_env(options, "bench.plain.settings"),
        log_dir / "plain.log",
        "bench.plain.wsgi:application",
    )
    with serve(api, plain) as (api_served, plain_served):
        port = api_served.port
        tokens = obtain_tokens(port, setup.usernames)
        authorize(workloads, tokens)
        for workload in workloads:
            measure(options, port, workload)
        floors = measure_floors(options, port, workloads, statements)
        compare_with_plain(options, api_served, plain_served, workloads)
        scenario_results = run_scenarios(options, port, setup, tokens)
    failures += scenario_failures(scenario_results)
    export = {
        "runs": [
            bench_export.measure_export(options.database_url, setup.largest["admin"], options.scale)
        ]
    }
    for workload in workloads:
        errors = workload.result["open_loop"]["errors"] + workload.result["saturation"]["errors"]
        if errors:
            first = (
                workload.result["open_loop"]["first_error"]
                or workload.result["saturation"]["first_error"]
            )
            failures.append(f"{workload.key}: {errors} failed requests ({first})")
    failures += [
        f"{key}: {f['api_errors']} failed requests" for key, f in floors.items() if f["api_errors"]
    ]
    failures += [
        f"{w.key} (API or plain build): {w.result['plain']['errors']} failed requests "
        f"({w.result['plain']['first_error']})"
        for w in workloads
        if w.result.get("plain", {}).get("errors")
    ]
    report = {
        "command": "make bench "
        + " ".join(
            f"{k}={v}"
            for k, v in (("BENCH_SCALE", options.scale), ("BENCH_SECONDS", options.seconds))
        ),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": machine_info(options.database_url),
        "server": {
            "name": server.label,
            "kind": server.kind,
            "workers": options.workers,
            "threads": options.threads,
            "redis": bool(options.redis_url),
            "throttle_user": options.throttle_user,
        },
        "settings": {
            "seconds": options.seconds,
            "saturation_seconds": options.saturation_seconds,
            "rate_fraction": options.rate_fraction,
            "connections": options.connections,
            "saturation_tool": workloads[0].result["saturation"]["mode"],
            "count_limit": pagination.COUNT_LIMIT,
            "max_results": pagination.MAX_RESULTS,
        },
        "dataset": {k: v for k, v in dataset.items() if k != "timings_seconds"}
        | {"generation_seconds": dataset.get("timings_seconds", {})},
        "workloads": [
            {"key": w.key, "name": w.name, "path": w.sample_path, "target": w.target} | w.result
            for w in workloads
        ],
        "floors": floors,
        "scenarios": scenario_results,
        "export": export,
        "failures": failures,
    }
    options.report.parent.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report, workloads) + "\n" + bench_export.render_markdown(export)
    options.report.with_suffix(".md").write_text(markdown)
    options.report.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(markdown)
    log(f"report: {options.report.with_suffix('.md')} ({report['duration_s']:.0f} s)")
    for failure in failures:
        log(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
