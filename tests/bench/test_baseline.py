"""bench/baseline.py: the alternating rounds against the plain build, the wait for the machine
to idle after each, and the CPU per request only where a round answered enough requests."""

from collections.abc import Iterator

import pytest

from bench import baseline
from bench.loadgen import Result
from bench.servers import Served


def samples(*seconds: float) -> Iterator[dict[str, float]]:
    """CPU samples whose total is each of `seconds` in turn (all of it the server's)."""
    for total in seconds:
        yield {"server": total, "postgres": 0.0, "redis": 0.0}


def test_the_drain_waits_until_a_poll_sees_under_a_tenth_of_a_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Busy for two polls (0.2 s of CPU each), then idle (0.001 s).
    readings = samples(0.0, 0.2, 0.4, 0.401, 99.0)
    monkeypatch.setattr(baseline.cpu, "sample", lambda group: next(readings))
    monkeypatch.setattr(baseline, "IDLE_POLL_S", 0.01)
    monkeypatch.setattr(baseline, "IDLE_SHARE", 0.5)  # idle: under 0.005 s per 0.01 s poll

    baseline.drain(group=1, limit_s=5)

    assert next(readings)["server"] == 99.0  # stopped at the idle poll, not after it


def test_the_drain_gives_up_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = iter(range(1000))
    monkeypatch.setattr(
        baseline.cpu, "sample", lambda group: {"server": float(next(busy)), "postgres": 0.0}
    )
    monkeypatch.setattr(baseline, "IDLE_POLL_S", 0.01)

    waited = baseline.drain(group=1, limit_s=0.1)

    assert 0.1 <= waited < 0.5


def test_a_round_with_too_few_requests_per_connection_gives_no_cpu_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(float(second) for second in range(1000))
    monkeypatch.setattr(
        baseline.cpu,
        "sample",
        lambda group: {"server": next(clock), "postgres": 0.0, "redis": 0.0},
    )
    monkeypatch.setattr(baseline, "drain", lambda group, limit_s: 0.0)
    api, plain = Served(port=1, group=10), Served(port=2, group=20)
    # The API answers 400 requests a round, the plain build 50: 10 per connection needs 160.
    completed = {1: 400, 2: 50}

    def saturate(port: int, targets: list) -> Result:  # type: ignore[type-arg]
        return Result(
            mode="closed-loop", intended_rate=None, duration_s=2.0, completed=completed[port]
        )

    compared = baseline.compare(saturate, api, plain, [], rounds=3, connections=16)

    assert compared["api_rps"] == [200.0] * 3
    assert compared["plain_rps"] == [25.0] * 3
    assert compared["ratio"] == 8.0
    # Each sample is one second of server CPU after the one before: 1 s over 400 requests.
    assert compared["cpu_ms"]["api"]["server"] == 2.5
    assert compared["cpu_ms"]["plain"] is None
