"""Error reporting (pms/sentry.py): an error reaches Sentry, and no PHI or credential with it.

Sentry runs with a transport that keeps each envelope in memory, so nothing leaves the machine.
"""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from document.models import Document
from patient.models import Patient
from pms.sentry import CREDENTIAL_NAMES, FILTERED, PHI_FIELD_NAMES, before_send, init_sentry

PHI = {
    "full_name": "Philippa Quartermaine",
    "notes": "Allergic to penicillin",
    "email": "philippa.q@patients.example",
}
BEARER = "eyJhbGciOiJIUzI1NiJ9.secret-access-token"
COOKIE = "sessionid-secret-cookie-value"
# Fields that hold no PHI: bookkeeping, references, flags. A new field must join one side.
NOT_PHI = {
    "id",
    "organization",
    "created_by",
    "uploaded_by",
    "patient",
    "document_type",
    "content_type",
    "size_bytes",
    "object_name",
    "is_uploaded",
    "uploaded_at",
    "checksum",
    "is_active",
    "archived_at",
    "created_at",
    "updated_at",
    "version",
    "scan_status",
    "scanned_at",
    # The name of the malware clamd found (e.g. Eicar-Test-Signature), not the file's content.
    "scan_finding",
    "object_generation",
    "merged_into",
}


class CapturingTransport(Transport):
    """Keeps what would be sent."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[Any]:
        return [event for envelope in self.envelopes if (event := envelope.get_event())]


@pytest.fixture
def sentry() -> Iterator[Callable[..., CapturingTransport]]:
    def start(**overrides: Any) -> CapturingTransport:
        transport = CapturingTransport()
        init_sentry(
            dsn="https://public@sentry.invalid/1",
            environment="test",
            release="test",
            transport=transport,
            **overrides,
        )
        return transport

    yield start
    sentry_sdk.get_client().close()
    # No DSN and no integrations: the patches integrations left in place step aside.
    sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)


def served_by_wsgi(request: WSGIRequest) -> int:
    """Answers the request through Django's WSGI handler, as the HTTP server would (Sentry's
    Django integration reads the request there; the test client bypasses it)."""
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)

    # As Django's test client does: a request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        b"".join(WSGIHandler()(request.environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(statuses[0].split()[0])


def phi_values() -> list[str]:
    return [*PHI.values(), BEARER, COOKIE, "Quartermaine"]


@pytest.mark.urls("tests.pms.urls")
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="as-configured"),
        # Every option that collects more turned on: before_send alone must still scrub.
        pytest.param(
            {
                "data_collection": {
                    "user_info": True,
                    "cookies": {"mode": "denylist", "terms": []},
                    "http_headers": {"request": {"mode": "denylist", "terms": []}},
                    "http_bodies": ["incoming_request"],
                    "url_query_params": {"mode": "denylist", "terms": []},
                    "database_query_data": True,
                    "stack_frame_variables": True,
                },
                "max_request_body_size": "always",
            },
            id="before-send-alone",
        ),
    ],
)
def test_an_error_reaches_sentry_without_the_phi_of_its_request(sentry, overrides) -> None:
    transport = sentry(**overrides)
    request = RequestFactory().post(
        f"/api/test/broken-with-phi/?search=Quartermaine&email={PHI['email']}",
        json.dumps(PHI),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {BEARER}",
        HTTP_COOKIE=f"sessionid={COOKIE}",
        HTTP_X_REQUEST_ID="req-sentry-1",
    )

    status = served_by_wsgi(request)
    sentry_sdk.flush()

    assert status == 500
    [event] = transport.events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["stacktrace"]["frames"][-1]["function"] == "broken_with_phi"
    assert event["tags"]["request_id"] == "req-sentry-1"
    assert event["request"]["url"].endswith("/api/test/broken-with-phi/")
    sent = json.dumps(event, default=str)
    assert [value for value in phi_values() if value.lower() in sent.lower()] == []


def test_before_send_strips_every_place_phi_can_hide() -> None:
    event: Any = {
        "request": {
            "url": "https://pms.example/api/patient/patients/",
            "data": dict(PHI),
            "query_string": "search=Quartermaine",
            "cookies": {"sessionid": COOKIE},
            "headers": {"Authorization": f"Bearer {BEARER}", "Content-Type": "application/json"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "value": f"Key (email)=({PHI['email']}) already exists",
                    "stacktrace": {"frames": [{"function": "save", "vars": dict(PHI)}]},
                }
            ]
        },
        "threads": {"values": [{"stacktrace": {"frames": [{"vars": {"name": PHI["notes"]}}]}}]},
        "logentry": {"message": "could not file %s", "params": [PHI["full_name"]]},
        "breadcrumbs": {"values": [{"category": "query", "data": {"db.params": [PHI["email"]]}}]},
        "extra": {
            "patient": {"full_name": PHI["full_name"], "id": 7},
            "token": BEARER,
            "request": "<WSGIRequest: GET '/api/patient/patients/?search=Quartermaine'>",
        },
        "contexts": {"form": {"notes": PHI["notes"]}},
    }

    scrubbed = before_send(event, {})

    sent = json.dumps(scrubbed)
    assert [value for value in phi_values() if value.lower() in sent.lower()] == []
    assert scrubbed["request"]["headers"] == {"Content-Type": "application/json"}
    assert scrubbed["request"]["url"] == "https://pms.example/api/patient/patients/"
    assert scrubbed["exception"]["values"][0]["type"] == "IntegrityError"
    assert scrubbed["extra"] == {
        "patient": {"full_name": FILTERED, "id": 7},
        "token": FILTERED,
        "request": FILTERED,
    }
    assert scrubbed["logentry"]["formatted"] == "could not file %s"


def test_every_patient_and_document_field_is_either_phi_or_named_harmless() -> None:
    fields = {field.name for model in (Patient, Document) for field in model._meta.concrete_fields}

    unclassified = fields - PHI_FIELD_NAMES - NOT_PHI
    assert unclassified == set()
    assert not PHI_FIELD_NAMES & NOT_PHI
    assert "password" in CREDENTIAL_NAMES
