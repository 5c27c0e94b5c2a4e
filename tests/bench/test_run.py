"""The benchmark runner: its workloads, its query-count check and its verdicts."""

from typing import Any

from django.db import connection

from bench import run
from bench.loadgen import Target
from bench.run import Workload


def test_every_workload_answers_and_its_query_count_does_not_depend_on_the_page_size(
    dataset: dict[str, Any],
) -> None:
    with connection.cursor() as cur:
        workloads = run.build_workloads(dataset, cur)

    statements = run.check_in_process(workloads, dataset["organizations"][0]["clinician"])

    assert [w.key for w in workloads] == [
        "W1", "W2", "W3 rare", "W3 medium", "W3 common", "W3 typo", "W4", "W5", "W6",
        "W7 org", "W7 patient", "W8",
    ]  # fmt: skip
    for workload in workloads:
        check = workload.result["in_process"]
        assert check["status"] == 200, workload.key
        if workload.paginated:
            assert check["constant"], (workload.key, check["queries_by_page_size"])
    checks = {w.key: w.result["in_process"] for w in workloads}
    assert checks["W3 rare"]["count"] >= 1
    assert checks["W3 common"]["count"] > checks["W3 medium"]["count"] > 0
    # The typo still finds the surname it misspells.
    assert checks["W3 typo"]["count"] >= 1
    assert set(statements) == {"W1", "W5"}
    assert any("patient_patient" in sql for sql in statements["W5"])


def test_a_deep_page_keeps_its_offset_at_other_page_sizes_within_the_results() -> None:
    path = "/api/patient/patients/?page_size=20&page=501"

    assert run.with_page_size(path, 100, count=50_000) == (
        "/api/patient/patients/?page_size=100&page=101"
    )
    assert run.with_page_size(path, 1, count=50_000) == (
        "/api/patient/patients/?page_size=1&page=10001"
    )
    assert run.with_page_size(path, 100, count=3_000) == (
        "/api/patient/patients/?page_size=100&page=30"
    )
    assert run.with_page_size("/x/?search=a", 1, count=5) == "/x/?search=a&page_size=1"


def measured(
    key: str, p95: float, *, limit: float | None, rps: float = 100, errors: int = 0
) -> Workload:
    workload = Workload(key, key, [Target("/")], p95_limit_ms=limit)
    workload.result = {
        "saturation": {"throughput_rps": rps, "errors": 0},
        "open_loop": {"latency_ms": {"p95": p95}, "errors": errors},
    }
    return workload


def test_verdicts_follow_the_targets_of_the_issue() -> None:
    assert run.verdict(measured("W1", 10, limit=15, rps=600), None) == "yes"
    assert run.verdict(measured("W1", 10, limit=15, rps=400), None) == "**no**"
    assert run.verdict(measured("W1", 20, limit=15, rps=600), None) == "**no**"
    assert run.verdict(measured("W2", 19, limit=None), w1_p95=10) == "yes"
    assert run.verdict(measured("W2", 21, limit=None), w1_p95=10) == "**no**"
    assert run.verdict(measured("W5", 4.9, limit=5), None) == "yes"
    assert run.verdict(measured("W5", 4.9, limit=5, errors=3), None) == "yes (errors)"
    assert run.verdict(measured("W6", 40, limit=None), None) == "—"


def test_each_missed_target_is_reported_with_its_numbers() -> None:
    workloads = [
        measured("W1", 12, limit=15, rps=250),
        measured("W2", 30, limit=None),
        measured("W5", 6, limit=5),
        measured("W7 org", 3, limit=20),
    ]
    for workload in workloads:
        workload.result["open_loop"]["intended_rate"] = 100

    assert run.missed_targets(workloads, w1_p95=12) == [
        "W1: saturation 250 rps, 2.0 x short of 500 rps.",
        "W2: p95 30.0 ms = 2.5 x W1 p95 (target <= 2 x).",
        "W5: p95 6.0 ms at 100 rps vs < 5 ms (1.2 x).",
    ]
