"""Each read workload against the plain DRF build (bench/plain), in one run.

Saturation throughput of the API and of the plain build, alternating (API, plain, API, plain,
...) for ROUNDS rounds; the ratio of the medians (API rps / plain rps) is the figure that
survives this machine's drift, since both sides see the same minute. Each round also reads the
CPU each side spent per request, in its server, PostgreSQL and Redis (bench/cpu.py): a ratio
under 1 is then either more work per request or more waiting with idle cores.

A closed loop ends with a request in flight on every connection, which the server goes on
serving: at the plain build's rate on a search (a few requests per second, each taking seconds
under the load) that work would run on into the other side's round. Each round therefore waits
until the machine is idle again before the next starts. The CPU per request is left out where a
round answered fewer than ten requests per connection: the requests still in flight at its end,
whose work is in the sample but not in the count, would then weigh more than a tenth.
"""

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import cpu
from bench.loadgen import Result, Target
from bench.servers import Served

# The workloads the plain build serves: list, deep page, substring search and detail.
PLAIN_KEYS = ("W1", "W2", "W3 rare", "W3 medium", "W3 common", "W5")
ROUNDS = 3
# Idle: the server's and the services' CPU under a tenth of a core over one poll.
IDLE_POLL_S = 0.25
IDLE_SHARE = 0.1
REQUESTS_PER_CONNECTION = 10


def drain(group: int, limit_s: float) -> float:
    """Waits until the server of process group `group`, PostgreSQL and Redis are idle, for at
    most `limit_s`; returns the seconds waited."""
    started = time.monotonic()
    before = cpu.sample(group)
    while before is not None and time.monotonic() - started < limit_s:
        time.sleep(IDLE_POLL_S)
        after = cpu.sample(group)
        if after is None or sum(after.values()) - sum(before.values()) < IDLE_POLL_S * IDLE_SHARE:
            break
        before = after
    return time.monotonic() - started


def compare(
    saturate: Callable[[int, list[Target]], Result],
    api: Served,
    plain: Served,
    targets: list[Target],
    rounds: int = ROUNDS,
    connections: int = 1,
    drain_limit_s: float = 1.0,
) -> dict[str, Any]:
    """`saturate(port, targets)` on each server in turn, `rounds` times, over `connections`
    connections; after each, up to `drain_limit_s` for the machine to be idle again."""
    rps: dict[str, list[float]] = {"api": [], "plain": []}
    spent: dict[str, list[dict[str, float]]] = {"api": [], "plain": []}
    errors = 0
    first_error = ""
    for _ in range(rounds):
        for side, served in (("api", api), ("plain", plain)):
            before = cpu.sample(served.group)
            result = saturate(served.port, targets)
            per_request = cpu.per_request(before, cpu.sample(served.group), result.completed)
            drain(served.group, drain_limit_s)
            rps[side].append(round(result.throughput, 1))
            if per_request and result.completed >= REQUESTS_PER_CONNECTION * connections:
                spent[side].append(per_request)
            errors += result.errors
            first_error = first_error or result.first_error
    api_rps, plain_rps = statistics.median(rps["api"]), statistics.median(rps["plain"])
    return {
        "api_rps": rps["api"],
        "plain_rps": rps["plain"],
        "api_median_rps": api_rps,
        "plain_median_rps": plain_rps,
        "ratio": round(api_rps / plain_rps, 2) if plain_rps else None,
        # Median ms of CPU per request by process, each side (None off Linux).
        "cpu_ms": {
            side: {name: statistics.median(r[name] for r in rounds_) for name in rounds_[0]}
            if rounds_
            else None
            for side, rounds_ in spent.items()
        },
        "errors": errors,
        "first_error": first_error,
    }
