"""Workloads W9-W11: writes, the worst-case searches, and starvation.

- W9: patient create (POST, through the duplicate check of registration) and PATCH with
  If-Match, each patient patched once at the version it was created with. The patients W9
  makes are named `... Zzbench...` and deleted when the run ends (`delete_written`).
- W10: the crafted worst-case ranked searches, each timed alone.
- W11: one user runs 8 W10 searches at a time while another user's W5 (detail) latency is
  measured; compared with the same measurement on a quiet server. The searcher's clients send
  a refused search again after its Retry-After; then, reported apart, at once (a flood).

W10 and W11 accept a 503 `query_timeout` and a 429 as clean answers (a bounded search refuses
instead of starving the others): they are counted apart from errors.
"""

import http.client
import json
import random
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import psycopg2

from bench import loadgen
from bench.loadgen import Result, Target
from bench.servers import HOST, PROXY_HEADERS

PATIENTS = "/api/patient/patients/"
# Family names of W9's patients start with it: no generated name does (bench/names.py).
WRITTEN_MARK = "Zzbench"
# W9's fixed request rate (a clinic registers patients far less often than it reads them).
WRITE_RATE = 20.0
CRAFTED_SEARCHES = ("rodriguezrodrigu", "amriaagrcia", "maria", "jhon")
SEARCH_REPEATS = 3
STARVING_SEARCHES = 8
# W11's W5 rate: enough requests for a p95 within the window, light beside the searches.
STARVED_RATE = 20.0
SEARCH_TIMEOUT_S = 60.0


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"), *PROXY_HEADERS)


def outcome(status: int, body: bytes) -> str:
    """ok, clean (a bounded refusal: 429, or 503 query_timeout) or error."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "clean"
    if status == 503:
        try:
            return "clean" if json.loads(body)["error"]["code"] == "query_timeout" else "error"
        except (ValueError, KeyError, TypeError):
            return "error"
    return "error"


def timed_get(port: int, path: str, token: str) -> tuple[float, int, bytes, float]:
    """One GET on a fresh connection: (ms, status, body, the seconds of its Retry-After or 0);
    status 0 when it failed."""
    connection = http.client.HTTPConnection(HOST, port, timeout=SEARCH_TIMEOUT_S)
    started = time.perf_counter()
    retry_after = 0.0
    try:
        connection.request("GET", path, headers=dict(bearer(token)))
        response = connection.getresponse()
        body = response.read()
        status = response.status
        retry_after = float(response.getheader("Retry-After") or 0)
    except OSError as error:
        body, status = str(error).encode(), 0
    except ValueError:  # a Retry-After that is a date: none of the API's
        pass
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000, status, body, retry_after


# --- W9 ----------------------------------------------------------------------------------------


def _word(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(length))


def create_targets(count: int, token: str, seed: int = 9) -> list[Target]:
    """`count` distinct new patients: different names and birth dates, so the duplicate check
    runs in full and finds nothing."""
    rng = random.Random(seed)  # noqa: S311 - synthetic names, not secrets
    targets = []
    for k in range(count):
        body = {
            "full_name": f"{_word(rng, 3).title()} {WRITTEN_MARK}{_word(rng, 3)}",
            "date_of_birth": (date(1940, 1, 1) + timedelta(days=k * 7 % 25_000)).isoformat(),
            "gender": rng.choice("FM"),
            "email": f"w9-{k}-{_word(rng, 2)}@bench.example",
        }
        targets.append(Target(PATIENTS, bearer(token), "POST", json.dumps(body).encode()))
    return targets


def written(cur: Any) -> list[tuple[int, int]]:
    """(id, version) of the patients W9 created."""
    cur.execute(
        "SELECT id, version FROM patient_patient WHERE full_name LIKE %s ORDER BY id",
        [f"% {WRITTEN_MARK}%"],
    )
    return [(int(pk), int(version)) for pk, version in cur.fetchall()]


def patch_targets(rows: list[tuple[int, int]], token: str) -> list[Target]:
    body = json.dumps({"address": "1 Benchmark Street"}).encode()
    return [
        Target(f"{PATIENTS}{pk}/", (*bearer(token), ("If-Match", f'"{version}"')), "PATCH", body)
        for pk, version in rows
    ]


def delete_written(cur: Any) -> int:
    """Removes W9's patients and their history, so that reruns start from the same data."""
    pattern = f"% {WRITTEN_MARK}%"
    cur.execute("DELETE FROM patient_historicalpatient WHERE full_name LIKE %s", [pattern])
    cur.execute("DELETE FROM patient_patient WHERE full_name LIKE %s", [pattern])
    return int(cur.rowcount)


@contextmanager
def cursor(database_url: str) -> Iterator[Any]:
    """A cursor in one committed transaction of its own connection."""
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def run_w9(port: int, token: str, database_url: str, seconds: float) -> dict[str, Any]:
    """Creates at WRITE_RATE for `seconds`, then patches each created patient once."""
    count = max(5, round(WRITE_RATE * seconds))
    created = loadgen.run_open_loop(
        HOST, port, create_targets(count, token), rate=WRITE_RATE, duration=count / WRITE_RATE
    )
    with cursor(database_url) as cur:
        rows = written(cur)
    patched = loadgen.run_open_loop(
        HOST,
        port,
        patch_targets(rows, token),
        rate=WRITE_RATE,
        duration=max(1, len(rows)) / WRITE_RATE,
    )
    return {"create": created.summary(), "patch": patched.summary(), "patients": len(rows)}


# --- W10 ---------------------------------------------------------------------------------------


def run_w10(port: int, token: str) -> dict[str, Any]:
    """Each crafted search SEARCH_REPEATS times, one at a time."""
    results = {}
    for term in CRAFTED_SEARCHES:
        timings, outcomes, statuses = [], [], []
        for _ in range(SEARCH_REPEATS):
            ms, status, body, _retry_after = timed_get(port, f"{PATIENTS}search/?q={term}", token)
            timings.append(ms)
            statuses.append(status)
            outcomes.append(outcome(status, body))
        results[term] = {
            "p50_ms": round(statistics.median(timings), 1),
            "max_ms": round(max(timings), 1),
            "statuses": statuses,
            "clean": outcomes.count("clean"),
            "errors": outcomes.count("error"),
        }
    return results


# --- W11 ---------------------------------------------------------------------------------------


@contextmanager
def searching(
    port: int, token: str, parallel: int, *, honor_retry_after: bool = True
) -> Iterator[dict[str, int]]:
    """`parallel` threads, each running the crafted searches one after another, until the block
    ends; yields the tally of their outcomes. A refused search is sent again after its
    Retry-After, as the API asks (the SPA and the integrators' clients do); without
    `honor_retry_after`, at once (a client flooding the API, which production's per-user rate
    limit bounds and the bench's raised one does not)."""
    tally = {"ok": 0, "clean": 0, "error": 0}
    stop = threading.Event()
    lock = threading.Lock()

    def search(offset: int) -> None:
        k = offset
        while not stop.is_set():
            term = CRAFTED_SEARCHES[k % len(CRAFTED_SEARCHES)]
            _ms, status, body, retry_after = timed_get(port, f"{PATIENTS}search/?q={term}", token)
            with lock:
                tally[outcome(status, body)] += 1
            k += 1
            if honor_retry_after and retry_after:
                stop.wait(retry_after)

    threads = [threading.Thread(target=search, args=(k,), daemon=True) for k in range(parallel)]
    for thread in threads:
        thread.start()
    try:
        yield tally
    finally:
        stop.set()
        for thread in threads:
            thread.join(SEARCH_TIMEOUT_S + 5)


def run_w11(
    port: int, searcher_token: str, detail_targets: list[Target], seconds: float
) -> dict[str, Any]:
    """The other user's W5 p95, quiet and while the searcher runs STARVING_SEARCHES at once:
    as clients that send a refused search again after its Retry-After (the target), then as
    a flood that sends it again at once (`flood`, reported)."""

    def detail() -> Result:
        return loadgen.run_open_loop(
            HOST, port, detail_targets, rate=STARVED_RATE, duration=seconds, connections=4
        )

    def starve(honor_retry_after: bool) -> dict[str, Any]:
        with searching(
            port, searcher_token, STARVING_SEARCHES, honor_retry_after=honor_retry_after
        ) as tally:
            time.sleep(min(2.0, seconds / 2))  # the searches are under way
            starved = detail().summary()
        p95 = starved["latency_ms"]["p95"]
        return {
            "starved": starved,
            "searches": dict(tally),
            "ratio_p95": round(p95 / quiet_p95, 2) if quiet_p95 else None,
        }

    quiet = detail().summary()
    quiet_p95 = quiet["latency_ms"]["p95"]
    return {"quiet": quiet, **starve(honor_retry_after=True), "flood": starve(False)}
