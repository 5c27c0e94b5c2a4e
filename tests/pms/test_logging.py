"""`LOG_FORMAT`: the production settings (base) log text lines or JSON objects, in a process of
their own, as the HTTP server and the Celery worker would."""

import json
import os
import subprocess
import sys

from tests.reliability.servers import BASE_DIR

LOG_ONE_LINE = (
    "import django, logging; django.setup(); "
    "from pms.context import request_id_var; request_id_var.set('req-fresh-1'); "
    "logging.getLogger('pms.tasks').warning('one line, %s', 'formatted')"
)


def log_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", LOG_ONE_LINE],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "pms.settings.base", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_log_format_json_writes_one_json_object_a_line_with_the_request_id() -> None:
    result = log_in_a_fresh_process(LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert record["message"] == "one line, formatted"
    assert record["request_id"] == "req-fresh-1"
    assert record["level"] == "WARNING"
    assert record["logger"] == "pms.tasks"
    assert "time" in record


def test_the_default_log_format_is_a_text_line() -> None:
    result = log_in_a_fresh_process()

    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line.endswith("WARNING pms.tasks [req-fresh-1] one line, formatted")


def test_an_unknown_log_format_stops_the_process() -> None:
    result = log_in_a_fresh_process(LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json" in result.stderr
