"""The profile's attribution of samples to layers."""

import pytest

from bench.generate import BenchError
from bench.profile import LAYERS, Frame, layer_of, parse_frame, split_by_layer, workload_keys

SITE = "/venv/lib/python3.11/site-packages/"
HANDLER = Frame(SITE + "django/core/handlers/base.py", "_get_response")
MIDDLEWARE = Frame(SITE + "django/middleware/common.py", "__call__")
VIEW = Frame(SITE + "rest_framework/views.py", "dispatch")
AUTHENTICATE = Frame(SITE + "rest_framework/views.py", "perform_authentication")
RECORD = Frame("/app/audit/services.py", "audit_record")
COMPILE = Frame(SITE + "django/db/models/sql/compiler.py", "as_sql")
EXECUTE = Frame(SITE + "django/db/backends/utils.py", "_execute")
C_EXECUTE = Frame("<built-in>", "cursor.execute")
REDIS = Frame(SITE + "redis/connection.py", "read_response")


def test_each_sample_goes_to_the_layer_of_its_stack() -> None:
    assert layer_of([HANDLER, MIDDLEWARE]) == "middleware"
    assert layer_of([HANDLER, MIDDLEWARE, VIEW]) == "DRF dispatch and view"
    assert layer_of([HANDLER, MIDDLEWARE, VIEW, COMPILE]) == "ORM compile"
    assert layer_of([HANDLER, MIDDLEWARE, VIEW, EXECUTE, C_EXECUTE]) == "database wait"
    assert layer_of([HANDLER, MIDDLEWARE, VIEW, REDIS]) == "Redis"
    assert layer_of([HANDLER]) == "Django handler"


def test_authentication_and_audit_own_everything_under_them() -> None:
    assert layer_of([HANDLER, VIEW, AUTHENTICATE, REDIS]) == "authentication"
    assert layer_of([HANDLER, VIEW, RECORD, COMPILE]) == "audit"
    assert layer_of([HANDLER, VIEW, RECORD, EXECUTE, C_EXECUTE]) == "audit"


def test_the_samples_time_adds_up_by_layer() -> None:
    def identifier(frame: Frame) -> str:
        return f"{frame.function}\x00{frame.path}\x0012\x01cCursorWrapper\x01l14"

    records = [
        ([identifier(f) for f in (HANDLER, VIEW, EXECUTE)], 0.003),
        ([identifier(f) for f in (HANDLER, VIEW, COMPILE)], 0.002),
        ([identifier(f) for f in (HANDLER, VIEW, EXECUTE)], 0.001),
    ]

    totals = split_by_layer(records)

    assert parse_frame(identifier(EXECUTE)) == EXECUTE
    assert set(totals) == set(LAYERS)
    assert round(totals["database wait"], 6) == 0.004
    assert round(totals["ORM compile"], 6) == 0.002
    assert sum(totals.values()) == totals["database wait"] + totals["ORM compile"]


def test_the_profiled_workloads_are_w1_and_w5_unless_others_are_named() -> None:
    known = {"W1": 1, "W3 typo": 2, "W5": 3}
    assert workload_keys(None, known) == ["W1", "W5"]
    assert workload_keys(["W3 typo"], known) == ["W3 typo"]
    with pytest.raises(BenchError, match="unknown workload W9"):
        workload_keys(["W1", "W9"], known)
