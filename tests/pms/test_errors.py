"""Every failure the API answers uses the one envelope of docs/architecture.md, "Errors"."""

import json

import pytest
from django.core.cache import cache
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.factories import PatientFactory

ENVELOPE_KEYS = {"status_code", "code", "message", "details", "timestamp", "request_id"}


def assert_envelope(response, status_code: int, code: str) -> dict:
    assert response.status_code == status_code
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == ENVELOPE_KEYS
    assert error["status_code"] == status_code
    assert error["code"] == code
    assert error["request_id"] == response["X-Request-ID"]
    return error


def test_a_validation_error_lists_the_fields(api_client, db):
    response = api_client.post("/api/auth/token/", {"username": "carol"})

    error = assert_envelope(response, 400, "validation_error")
    assert error["message"] == "Bad request - Invalid input data"
    assert error["details"] == {"password": ["This field is required."]}


def test_a_missing_token_is_401(api_client, db):
    assert_envelope(api_client.get("/api/accounts/me/"), 401, "not_authenticated")


def test_a_bad_token_is_401(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    assert_envelope(api_client.get("/api/accounts/me/"), 401, "token_not_valid")


@pytest.mark.urls("tests.pms.urls")
def test_a_permission_denial_is_403(api_client, db):
    assert_envelope(api_client.get("/api/test/forbidden/"), 403, "permission_denied")


@pytest.mark.parametrize("path", ["/api/nothing-here/", "/api/otp/nope/", "/api/x"])
def test_an_unknown_api_path_is_404(api_client, db, path):
    assert_envelope(api_client.get(path), 404, "not_found")


def test_a_wrong_method_is_405(client_for, clinician):
    assert_envelope(client_for(clinician).delete("/api/accounts/me/"), 405, "method_not_allowed")


def test_an_unsupported_media_type_is_415(api_client, db):
    response = api_client.post("/api/auth/token/", "username=x", content_type="text/plain")

    assert_envelope(response, 415, "unsupported_media_type")


def test_malformed_json_is_400(api_client, db):
    response = api_client.post("/api/auth/token/", "{nope", content_type="application/json")

    assert_envelope(response, 400, "parse_error")


@pytest.mark.urls("tests.pms.urls")
def test_an_oversized_json_body_is_413(api_client, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"notes": "x" * 2048})

    response = api_client.post("/api/test/echo/", body, content_type="application/json")

    assert_envelope(response, 413, "payload_too_large")


@pytest.mark.urls("tests.pms.urls")
def test_a_body_under_the_limit_is_parsed(api_client, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = api_client.post("/api/test/echo/", {"a": 1, "b": 2}, format="json")

    assert response.status_code == 200
    assert response.content == b"2"


@pytest.mark.urls("tests.pms.urls")
def test_an_unexpected_error_is_a_500_without_details(api_client, db, caplog):
    response = api_client.get("/api/test/broken/")

    error = assert_envelope(response, 500, "server_error")
    assert error["message"] == "Internal server error."
    assert "Jane" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    # The traceback is logged for the operators, with the request id.
    assert any(record.exc_info for record in caplog.records)


@pytest.mark.urls("tests.pms.urls")
def test_a_500_outside_drf_is_still_the_envelope(db):
    client = Client(raise_request_exception=False)

    response = client.get("/test/plain/")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


@pytest.mark.urls("tests.pms.urls")
def test_a_database_outage_is_a_503(api_client, db):
    error = assert_envelope(api_client.get("/api/test/database-down/"), 503, "service_unavailable")
    assert "connect" not in error["message"]


def test_an_unreachable_cache_is_a_503(client_for, clinician, monkeypatch):
    client = client_for(clinician)

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    # Every read a request makes: the user, alone or with the request's rate-limit count.
    for operation in ("get", "get_and_count", "count"):
        monkeypatch.setattr(cache, operation, unreachable)

    error = assert_envelope(client.get("/api/patient/patients/"), 503, "service_unavailable")
    assert "6379" not in error["message"]


def test_the_request_id_is_echoed(api_client, db):
    response = api_client.get("/api/nothing/", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"
    assert response.json()["error"]["request_id"] == "abc-123"


def test_a_request_id_is_generated_when_missing_or_unsafe(api_client, db):
    generated = api_client.get("/healthz")
    unsafe = api_client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nforged log line")

    assert len(generated["X-Request-ID"]) == 32
    assert unsafe["X-Request-ID"] != "bad id\nforged log line"
    assert len(unsafe["X-Request-ID"]) == 32


# --- inputs that used to be 500s -------------------------------------------------------------

DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "path", ["/api/auth/token/", "/api/patient/patients/", "/api/document/sign-upload/"]
)
def test_a_json_body_nested_too_deeply_is_a_400(client_for, clinician, path):
    response = client_for(clinician).post(path, DEEP_JSON, content_type="application/json")

    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {"non_field_errors": ["The JSON body is nested too deeply."]}


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_an_if_match_too_long_to_be_a_version_is_a_400(client_for, clinician, method):
    patient = PatientFactory.create(organization=clinician.organization)

    response = getattr(client_for(clinician), method)(
        f"/api/patient/patients/{patient.pk}/",
        {"notes": "changed"},
        format="json",
        HTTP_IF_MATCH='"' + "9" * 5000 + '"',
    )

    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == ["If-Match"]
    patient.refresh_from_db()
    assert (patient.version, patient.is_active) == (1, True)


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-15:00", "0001-01-01T00:00:00+14:00"])
@pytest.mark.parametrize("parameter", ["occurred_after", "occurred_before"])
def test_an_instant_outside_the_calendar_in_utc_is_a_400(client_for, org_admin, parameter, instant):
    response = client_for(org_admin).get("/api/audit/events/", {parameter: instant})

    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == [parameter]


def test_an_instant_with_a_far_offset_inside_the_calendar_still_filters(client_for, org_admin):
    response = client_for(org_admin).get(
        "/api/audit/events/", {"occurred_after": "9999-12-31T00:00:00+14:00"}
    )

    assert response.status_code == 200
    assert response.json()["count"] == 0
