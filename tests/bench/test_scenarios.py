"""W9-W11 of the benchmark: what they send, how their answers are judged, and the cleanup."""

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from accounts.models import User
from bench import run, scenarios
from bench.loadgen import Target
from patient.models import Patient
from tests.factories import PatientFactory


def test_a_bounded_refusal_is_clean_and_anything_else_but_success_is_an_error() -> None:
    timeout = json.dumps({"error": {"code": "query_timeout"}}).encode()
    outage = json.dumps({"error": {"code": "service_unavailable"}}).encode()

    assert scenarios.outcome(200, b"{}") == "ok"
    assert scenarios.outcome(429, b"") == "clean"
    assert scenarios.outcome(503, timeout) == "clean"
    assert scenarios.outcome(503, outage) == "error"
    assert scenarios.outcome(503, b"<html>") == "error"
    assert scenarios.outcome(500, b"") == "error"
    assert scenarios.outcome(0, b"connection refused") == "error"


def send(client: APIClient, target: Target) -> Any:
    headers = {name: value for name, value in target.headers if name != "Authorization"}
    call = {"POST": client.post, "PATCH": client.patch}[target.method]
    return call(target.path, target.body, content_type="application/json", headers=headers)


def test_w9_registers_new_patients_patches_each_once_and_leaves_nothing_behind(
    client_for: Callable[[User], APIClient], clinician: User
) -> None:
    PatientFactory.create_batch(3, organization=clinician.organization)
    client = client_for(clinician)

    created = [send(client, t) for t in scenarios.create_targets(6, token="unused")]
    with connection.cursor() as cur:
        rows = scenarios.written(cur)
    patched = [send(client, t) for t in scenarios.patch_targets(rows, token="unused")]
    stale = send(client, scenarios.patch_targets(rows[:1], token="unused")[0])
    with connection.cursor() as cur:
        deleted = scenarios.delete_written(cur)

    # The duplicate check ran and found nothing: six distinct people.
    assert [r.status_code for r in created] == [201] * 6
    assert [r.status_code for r in patched] == [200] * 6
    # The If-Match of the creation no longer matches once patched.
    assert stale.status_code == 412
    assert deleted == 6
    assert Patient.objects.count() == 3


def test_the_report_states_the_ratio_to_the_plain_build_and_the_scenarios() -> None:
    workload = run.Workload("W5", "patient detail", [Target("/")])
    workload.result["plain"] = {
        "api_rps": [500.0, 520.0, 510.0],
        "plain_rps": [800.0, 820.0, 790.0],
        "api_median_rps": 510.0,
        "plain_median_rps": 800.0,
        "ratio": 0.64,
        "cpu_ms": {
            "api": {"server": 2.5, "postgres": 0.7, "redis": 0.1, "total": 3.3},
            "plain": None,
        },
    }
    latency = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}
    results = {
        "W9": {
            "patients": 20,
            "create": {"latency_ms": latency | {"p95": 31.0}, "errors": 0},
            "patch": {"latency_ms": latency, "errors": 0},
        },
        "W10": {
            "maria": {
                "p50_ms": 300,
                "max_ms": 400,
                "statuses": [200, 200],
                "clean": 0,
                "errors": 0,
            },
            "amriaagrcia": {
                "p50_ms": 2000,
                "max_ms": 2000,
                "statuses": [503, 503],
                "clean": 2,
                "errors": 0,
            },
        },  # fmt: skip
        "W11": {
            "quiet": {"latency_ms": latency, "errors": 0},
            "starved": {"latency_ms": latency | {"p95": 5.0}, "errors": 0},
            "searches": {"ok": 3, "clean": 5, "error": 0},
            "ratio_p95": 2.5,
            "flood": {
                "starved": {"latency_ms": latency | {"p95": 9.0}, "errors": 0},
                "searches": {"ok": 2, "clean": 70, "error": 0},
                "ratio_p95": 4.5,
            },
        },
    }

    lines = run.render_plain([workload]) + run.render_scenarios(results)

    assert (
        "| W5 | 510 | 800 | 0.64x | 500/800, 520/820, 510/790 | 3.30 (2.50 + 0.70 + 0.10) | — |"
        in lines
    )
    assert any(line.startswith("| POST /patients/") and "| **no** |" in line for line in lines)
    # Slow 200s miss the target; 503 query_timeout answers are clean.
    assert any("q=maria" in line and line.endswith("| **no** |") for line in lines)
    assert any("q=amriaagrcia" in line and line.endswith("| yes |") for line in lines)
    assert "ratio of p95s 2.5 (target <= 2: **no**)" in lines[-1]
    assert "5 clean refusals" in lines[-1]
    assert "at once (a flood" in lines[-1]
    assert "p95 9.00 ms, ratio 4.5; 2 ok, 70 clean refusals" in lines[-1]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Refuses every request as the concurrency limit does: 429 with Retry-After: 1."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests += 1  # type: ignore[attr-defined]
        body = b'{"error": {"code": "too_many_concurrent_requests"}}'
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_w11_searcher_waits_out_each_retry_after_and_the_flood_does_not() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    server.requests = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        _ms, status, _body, retry_after = scenarios.timed_get(port, "/", "token")
        assert (status, retry_after) == (429, 1.0)

        counts = {}
        for honor in (True, False):
            server.requests = 0  # type: ignore[attr-defined]
            with scenarios.searching(port, "token", 4, honor_retry_after=honor) as tally:
                time.sleep(0.5)
            counts[honor] = server.requests  # type: ignore[attr-defined]
            assert tally["clean"] == counts[honor]
    finally:
        server.shutdown()
        server.server_close()

    # Within half a second: one try per client, then each waits its second out.
    assert counts[True] == 4
    assert counts[False] > 20
