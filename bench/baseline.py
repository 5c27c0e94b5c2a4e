"""Each read workload against the plain DRF build (bench/plain), in one run.

Saturation throughput of the API and of the plain build, alternating (API, plain, API, plain,
...) for ROUNDS rounds; the ratio of the medians (API rps / plain rps) is the figure that
survives this machine's drift, since both sides see the same minute.
"""

import statistics
from collections.abc import Callable
from typing import Any

from bench.loadgen import Result, Target

# The workloads the plain build serves: list, deep page, substring search and detail.
PLAIN_KEYS = ("W1", "W2", "W3 rare", "W3 medium", "W3 common", "W5")
ROUNDS = 3


def compare(
    saturate: Callable[[int, list[Target]], Result],
    api_port: int,
    plain_port: int,
    targets: list[Target],
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """`saturate(port, targets)` on each server in turn, `rounds` times."""
    api: list[float] = []
    plain: list[float] = []
    errors = 0
    first_error = ""
    for _ in range(rounds):
        for port, throughputs in ((api_port, api), (plain_port, plain)):
            result = saturate(port, targets)
            throughputs.append(round(result.throughput, 1))
            errors += result.errors
            first_error = first_error or result.first_error
    api_rps, plain_rps = statistics.median(api), statistics.median(plain)
    return {
        "api_rps": api,
        "plain_rps": plain,
        "api_median_rps": api_rps,
        "plain_median_rps": plain_rps,
        "ratio": round(api_rps / plain_rps, 2) if plain_rps else None,
        "errors": errors,
        "first_error": first_error,
    }
