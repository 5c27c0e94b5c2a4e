"""Schemathesis over the OpenAPI schema: every operation, against the WSGI app, as a clinic admin.

Each operation is one test with its own database transaction and seeded data (patients, an
uploaded and a pending document, another clinic's patient). Generated path ids and body ids
point at the seeded records part of the time, so the fuzzer reaches real objects, not only 404s.
Hypothesis runs derandomized with a fixed number of examples: the same cases on every run.

Every check runs (server errors, status codes, content types, headers, response schemas,
negative data rejection, ...) but positive data acceptance; `CONFIG` and `filter_failure` below
say what is relaxed and why.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for
from rest_framework.throttling import AnonRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation

from accounts.models import Organization, User
from document.models import Document
from document.storage import get_storage
from patient.models import Patient
from pms.throttles import AuthRateThrottle, UserRateThrottle
from tests.factories import DocumentFactory, PatientFactory

EXAMPLES_PER_OPERATION = 40

# The whole configuration is here (no schemathesis.toml is read).
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # Off: the API enforces domain rules a JSON schema cannot state (a birth date not in
            # the future, the right one-time code, a patient id that exists in the caller's
            # clinic), and answers them with the documented 400. Every other check stays on.
            "positive_data_acceptance": {"enabled": False},
        }
    }
)
# The local storage PUT takes the file's own bytes, declared per allowed type; without this the
# fuzzer would skip the types it has no file sample for (PDF, TIFF, DICOM, DOCX).
schemathesis.serializer.alias(
    [
        "application/pdf",
        "image/tiff",
        "application/dicom",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ],
    "application/octet-stream",
)
raw_schema = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(raw_schema, config=CONFIG)
schema.app = get_wsgi_application()

# Ids of the seeded records of the running test, read by the generation hooks below.
SEEDED: dict[str, list[int]] = {}


@schema.hook
def before_generate_path_parameters(context: Any, strategy: Any) -> Any:
    """Half the generated `{id}`s name a seeded record (of any kind: a patient id on a document
    path is a realistic mistake too)."""

    def with_seeded_id(parameters: Any) -> Any:
        if not isinstance(parameters, dict) or "id" not in parameters:
            return st.just(parameters)
        return st.sampled_from(SEEDED.get("ids") or [1]).map(lambda pk: {**parameters, "id": pk})

    return st.one_of(strategy, strategy.flatmap(with_seeded_id))


@schema.hook
def before_generate_body(context: Any, strategy: Any) -> Any:
    """Half the generated bodies carry seeded patient and document ids."""

    def with_seeded_ids(body: Any) -> Any:
        if not isinstance(body, dict):
            return st.just(body)
        keys = [key for key in ("patient_id", "document_id") if key in body]
        if not keys:
            return st.just(body)
        return st.sampled_from(SEEDED.get("ids") or [1]).map(
            lambda pk: {**body, **dict.fromkeys(keys, pk)}
        )

    return st.one_of(strategy, strategy.flatmap(with_seeded_ids))


FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _query_as_the_server_reads_it(query: dict[str, Any]) -> dict[str, Any]:
    """Django's QueryDict semantics as the filters apply them: the last of repeated values
    wins, and an empty (or `null`) value means the parameter was not given."""
    read = {}
    for name, value in query.items():
        if isinstance(value, list):
            value = value[-1] if value else None
        if value not in ("", None):
            read[name] = value
    return read


def _negation_is_only_ignored_query_input(case: schemathesis.Case) -> bool:
    meta = case.meta
    if meta is None:
        return False
    negated = {location for location, info in meta.components.items() if info.mode.is_negative}
    if not negated <= {ParameterLocation.QUERY, ParameterLocation.HEADER}:
        return False
    container = case.operation.get_parameter_set(ParameterLocation.QUERY)
    schema = container.schema
    declared = schema.get("properties", {})
    read = {
        name: _typed(value, declared[name])
        for name, value in _query_as_the_server_reads_it(dict(case.query or {})).items()
        if name in declared
    }
    return bool(validator_for(schema)(schema).is_valid(read))


def _typed(value: Any, declared: dict[str, Any]) -> Any:
    """A query value as the filter reads it: text in the URL, typed by the filter's field
    (`?is_uploaded=false` is the boolean false, `?page=2` the number 2)."""
    if not isinstance(value, str):
        return value
    kind = declared.get("type")
    if kind == "boolean" and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    if kind in ("integer", "number"):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value
    return value


def _negation_is_only_numbers_for_text(case: schemathesis.Case) -> bool:
    """A JSON number sent for a text field, which DRF's CharField stores as its text."""
    meta = case.meta
    if meta is None or not isinstance(case.body, dict):
        return False
    negated = {location for location, info in meta.components.items() if info.mode.is_negative}
    if negated != {ParameterLocation.BODY}:
        return False
    body = next((body for body in case.operation.body if body.media_type == case.media_type), None)
    schema = body.resolved_schema if body is not None else None
    if not schema:
        return False
    properties = schema.get("properties", {})
    as_text = {
        name: str(value)
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and properties.get(name, {}).get("type") == "string"
        else value
        for name, value in case.body.items()
    }
    return as_text != case.body and bool(validator_for(schema)(schema).is_valid(as_text))


@schema.hook
def filter_failure(context: Any, failure: Any, case: schemathesis.Case, response: Any) -> bool:
    """Drops exactly three kinds of "schema-violating request accepted", conventions the API
    keeps on purpose (docs/reliability.md):

    * form and multipart bodies: they carry no JSON types, and DRF reads a blank form field as
      an absent one (HTML forms send every field), so "wrong type" or "blank" cannot be told;
    * query strings that, read as Django reads them (last repeated value, empty = absent,
      unknown names ignored), are valid: the request was served as the valid one it reads as;
    * a JSON number for a text field (DRF stores `"title": 7` as "7"), nothing else wrong.
    """
    if not isinstance(failure, AcceptedNegativeData):
        return True
    if case.media_type in FORM_MEDIA_TYPES:
        return False
    return not (
        _negation_is_only_ignored_query_input(case) or _negation_is_only_numbers_for_text(case)
    )


@pytest.fixture
def google_rejects_every_token(settings: Any) -> Iterator[None]:
    """Google sign-in configured, with Google (mocked: nothing leaves the machine) refusing the
    fuzzer's tokens as the real one would."""
    settings.GOOGLE_OAUTH2_CLIENT_ID = "1234-pms.apps.googleusercontent.com"
    settings.GOOGLE_OAUTH2_CLIENT_SECRET = "fuzz-secret"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as google:
        google.get(re.compile(r"https://www\.googleapis\.com/oauth2/v1/certs"), json={})
        google.post(
            re.compile(r"https://oauth2\.googleapis\.com/tokeninfo"),
            status=400,
            json={"error": "invalid_token", "error_description": "Invalid Value"},
        )
        google.get(
            re.compile(r"https://www\.googleapis\.com/oauth2/v3/userinfo"),
            status=401,
            json={"error": "invalid_request"},
        )
        yield


@pytest.fixture
def connections_kept_per_request() -> Iterator[None]:
    """The WSGI app runs inside the test's transaction; Django's end-of-request hook would close
    that connection (it is not in autocommit). Django's own test client unhooks it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(
    connections_kept_per_request: None,
    google_rejects_every_token: None,
    settings: Any,
    tmp_path: Path,
    organization: Organization,
    other_organization: Organization,
    org_admin: User,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The clinic's data and an admin's Bearer header."""
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    # Rate limits are tested elsewhere; here they would only turn most cases into 429s.
    for throttle in (AnonRateThrottle, UserRateThrottle, AuthRateThrottle):
        monkeypatch.setattr(throttle, "rate", "100000/min", raising=False)
    patients: list[Patient] = [
        PatientFactory.create(organization=organization, created_by=org_admin) for _ in range(3)
    ]
    foreign = PatientFactory.create(organization=other_organization)
    uploaded: Document = DocumentFactory.create(patient=patients[0], uploaded=True, size_bytes=8)
    get_storage().write(  # type: ignore[attr-defined]
        uploaded.object_name, [b"%PDF-1.7"], content_type="application/pdf", max_bytes=8
    )
    pending = DocumentFactory.create(patient=patients[1])
    SEEDED["ids"] = sorted(
        {patient.pk for patient in patients} | {foreign.pk, uploaded.pk, pending.pk}
    )
    token = RefreshToken.for_user(org_admin).access_token
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_schema_and_never_errors(
    case: schemathesis.Case, seeded: dict[str, str]
) -> None:
    case.call_and_validate(headers=seeded)
