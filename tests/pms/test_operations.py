"""Health probes, offline API docs, CORS and production settings."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from pms.version import VERSION

BASE_DIR = Path(__file__).resolve().parents[2]


def test_healthz_answers_without_touching_the_database(api_client):
    # No `db` fixture: any database access here would raise.
    response = api_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": VERSION}


def test_the_version_is_written_once_and_shown_by_the_schema_and_healthz(api_client):
    pyproject = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert pyproject["project"]["version"] == VERSION
    assert schema.json()["info"]["version"] == VERSION
    assert f"## [{VERSION}]" in (BASE_DIR / "CHANGELOG.md").read_text()


def test_readyz_checks_database_and_cache(api_client, db):
    response = api_client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "cache": True}}


@pytest.fixture
def unreachable_database(db, tmp_path):
    """Swaps in a default connection that really cannot reach its database."""
    original = connections[DEFAULT_DB_ALIAS]
    settings_dict = dict(original.settings_dict)
    if original.vendor == "sqlite":
        settings_dict["NAME"] = str(tmp_path / "missing-dir" / "db.sqlite3")
    else:
        # A loopback port nobody listens on: the connection is refused at once.
        settings_dict.update(HOST="127.0.0.1", PORT="9")
    broken = original.__class__(settings_dict, DEFAULT_DB_ALIAS)
    connections[DEFAULT_DB_ALIAS] = broken
    yield
    broken.close()
    connections[DEFAULT_DB_ALIAS] = original


def test_readyz_is_503_in_the_envelope_when_the_database_is_unreachable(
    api_client, unreachable_database
):
    response = api_client.get("/readyz")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"database": ["unavailable"]}


def test_the_docs_page_uses_only_files_the_app_serves_itself(api_client, db):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets, "the page should load its Swagger UI assets"
    for asset in assets:
        # Static files, and the page's own init script (`?script=`, no inline script).
        assert asset.startswith(("/static/", "/api/docs/?script=")), asset
    assert "//cdn" not in html
    assert "https://" not in html.replace("https://swagger.io", "")
    for asset in assets:
        assert api_client.get(asset).status_code == 200, asset


def test_redoc_uses_only_local_files(api_client, db):
    html = api_client.get("/api/redoc/").content.decode()

    scripts = re.findall(r"""src=["']([^"']+)["']""", html)
    assert scripts
    assert all(script.startswith("/static/") for script in scripts)


def test_the_schema_documents_the_error_envelope(api_client, db):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    me = schema["paths"]["/api/accounts/me/"]["get"]["responses"]
    assert {"200", "401", "403", "404", "429"} <= set(me)
    assert "ErrorEnvelope" in schema["components"]["schemas"]


ALLOWED_ORIGIN = "https://app.clinic.example"


def test_cors_allows_the_configured_origin(api_client, db, settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]

    response = api_client.options(
        "/api/auth/token/",
        HTTP_ORIGIN=ALLOWED_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,if-match",
    )

    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "if-match" in response["Access-Control-Allow-Headers"]


def test_cors_sends_nothing_for_another_origin(api_client, db, settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]

    response = api_client.get("/healthz", HTTP_ORIGIN="https://evil.example")

    assert "Access-Control-Allow-Origin" not in response


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    return subprocess.run(  # noqa: S603 - fixed argv, our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", DEBUG="false", ALLOWED_HOSTS="pms.example.org")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="x" * 20 + "production-secret-key-for-the-deploy-check-0123456789",
        ALLOWED_HOSTS="pms.example.org",
        # Production runs tasks on workers; without a broker the check warns (pms.W001).
        CELERY_BROKER_URL="redis://127.0.0.1:6379/1",
        # Production scans documents; with the scanner off the check warns (document.W001).
        # The address is only a setting here: the check does not contact clamd.
        DOCUMENT_SCANNER="clamd",
        CLAMD_SOCKET="/run/clamav/clamd.ctl",
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_settings_writes_nothing(tmp_path):
    shutil.copytree(
        BASE_DIR / "pms", tmp_path / "pms", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(BASE_DIR / "pyproject.toml", tmp_path)
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    clean = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}

    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", "import pms.settings.base as s; assert s.SECRET_KEY"],
        cwd=tmp_path,
        env={**clean, "PYTHONDONTWRITEBYTECODE": "1", "DEBUG": "true"},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before


# Listed for operators, but read from the environment by the library itself.
READ_BY_LIBRARIES = {"PROMETHEUS_MULTIPROC_DIR"}


def test_env_example_lists_exactly_the_variables_the_settings_read():
    read = set(
        re.findall(
            r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', (BASE_DIR / "pms/settings/base.py").read_text()
        )
    )
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (BASE_DIR / ".env.example").read_text(), re.M))

    assert sorted(read - listed) == []
    assert sorted(listed - read - READ_BY_LIBRARIES) == []
