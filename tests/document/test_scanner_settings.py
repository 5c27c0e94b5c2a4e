"""The scanner's settings and checks, and the rule that CI never skips the clamd tests."""

from typing import Any

import pytest
from django.core import checks

from document.apps import check_scanner_on_in_production, check_scanner_settings
from tests.document import clamd as clamd_helpers


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [str(message.id) for message in messages]


def test_with_debug_off_and_the_scanner_off_the_deploy_check_warns(settings: Any) -> None:
    settings.DEBUG = False
    settings.DOCUMENT_SCANNER = "off"

    assert ids(check_scanner_on_in_production()) == ["document.W001"]


def test_the_deploy_check_needs_only_the_setting_not_a_running_clamd(settings: Any) -> None:
    settings.DEBUG = False
    settings.DOCUMENT_SCANNER = "clamd"
    settings.CLAMD_HOST = "127.0.0.1"
    settings.CLAMD_PORT = 9  # nothing listens there

    assert check_scanner_on_in_production() == []
    assert check_scanner_settings() == []


def test_the_embedded_default_is_scanner_off_without_a_warning_in_debug(settings: Any) -> None:
    settings.DEBUG = True
    settings.DOCUMENT_SCANNER = "off"

    assert check_scanner_on_in_production() == []
    assert check_scanner_settings() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"DOCUMENT_SCANNER": "clamav"},
        {"DOCUMENT_SCANNER": "clamd", "CLAMD_HOST": "", "CLAMD_SOCKET": ""},
        {"DOCUMENT_SCANNER": "clamd", "CLAMD_HOST": "127.0.0.1", "CLAMD_PORT": 0},
        {
            "DOCUMENT_SCANNER": "clamd",
            "CLAMD_SOCKET": "/run/clamav/clamd.ctl",
            "STORAGE_BACKEND": "gcs",
            "GCS_BUCKET_NAME": "documents",
            "GCS_QUARANTINE_BUCKET": "",
        },
    ],
    ids=["unknown-scanner", "no-address", "bad-port", "gcs-without-quarantine-bucket"],
)
def test_bad_scanner_settings_are_a_system_check_error(settings: Any, changes: dict) -> None:
    for name, value in changes.items():
        setattr(settings, name, value)

    assert ids(check_scanner_settings()) == ["document.E002"]


def test_the_clamd_tests_skip_without_clamd_but_fail_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clamd_helpers, "clamd_binary", lambda: None)

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        clamd_helpers.require_clamd()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="clamd is missing on CI"):
        clamd_helpers.require_clamd()
