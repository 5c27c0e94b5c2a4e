"""FHIR over HTTP: JSON only, every error an OperationOutcome, nothing cached, public
metadata."""

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from pms.throttles import UserRateThrottle
from tests.factories import PatientFactory
from tests.fhir.conftest import FHIR_JSON, fhir_get, validate


def test_the_capability_statement_is_public_and_valid(api_client, db):
    response = fhir_get(api_client, "/fhir/R4/metadata", HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert response.status_code == 200
    statement = validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    resources = {resource.type: resource for resource in statement.rest[0].resource}
    assert set(resources) == {"Patient", "DocumentReference", "Group"}
    patient = resources["Patient"]
    assert [interaction.code for interaction in patient.interaction] == ["read", "search-type"]
    assert {param.name for param in patient.searchParam} == {
        "_id",
        "_lastUpdated",
        "identifier",
        "name",
        "family",
        "given",
        "birthdate",
        "gender",
    }
    assert {param.name for param in resources["DocumentReference"].searchParam} >= {
        "patient",
        "type",
        "date",
    }
    assert [op.definition for op in patient.operation + resources["Group"].operation] == [
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    ]
    assert "handling=lenient" in statement.rest[0].documentation
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        ("application/fhir+xml", ""),
        ("application/xml", ""),
        ("text/html", ""),
        (FHIR_JSON, "?_format=xml"),
        (FHIR_JSON, "?_format=application/fhir+xml"),
    ],
)
def test_xml_is_not_acceptable(as_clinician, organization, accept, query):
    patient = PatientFactory.create(organization=organization)

    response = as_clinician.get(f"/fhir/R4/Patient/{patient.pk}{query}", HTTP_ACCEPT=accept)

    assert response.status_code == 406
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = validate(response.json())
    assert outcome.issue[0].code == "not-supported"
    assert AuditEvent.objects.get().status_code == 406


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "application/fhir+json; fhirVersion=4.0", ""]
)
def test_json_in_any_spelling_is_served(as_clinician, organization, accept):
    patient = PatientFactory.create(organization=organization)

    response = as_clinician.get(f"/fhir/R4/Patient/{patient.pk}?_format=json", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt"])
def test_no_valid_token_is_a_401_outcome(db, authorization):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = fhir_get(client, "/fhir/R4/Patient")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["issue"][0]["code"] == "login"
    assert AuditEvent.objects.get().outcome == "denied"


def test_throttling_is_a_429_outcome_with_retry_after(as_clinician, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "rate", "2/min", raising=False)

    statuses = [fhir_get(as_clinician, "/fhir/R4/Patient").status_code for _ in range(3)]
    response = fhir_get(as_clinician, "/fhir/R4/Patient")

    assert statuses == [200, 200, 429]
    assert int(response["Retry-After"]) > 0
    assert response.json()["issue"][0]["code"] == "throttled"
    assert AuditEvent.objects.filter(status_code=429).count() == 2


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/R4/Patient",
        "/fhir/R4/Patient/{pk}",
        "/fhir/R4/Patient/0",
        "/fhir/R4/DocumentReference",
    ],
)
def test_every_answer_is_no_store(as_clinician, organization, path):
    patient = PatientFactory.create(organization=organization)

    response = as_clinician.get(path.format(pk=patient.pk))

    assert response["Cache-Control"] == "no-store"


def test_a_write_method_is_a_405_outcome(as_clinician, organization):
    patient = PatientFactory.create(organization=organization)

    response = as_clinician.put(f"/fhir/R4/Patient/{patient.pk}", {}, format="json")

    assert response.status_code == 405
    assert validate(response.json()).issue[0].code == "not-supported"


@pytest.mark.parametrize(
    "path", ["/fhir/R4/Observation", "/fhir/R4/Patient/1/extra", "/fhir/R5/metadata", "/fhir/"]
)
def test_an_unknown_fhir_path_is_a_recorded_404_outcome(as_clinician, path):
    response = as_clinician.get(path, HTTP_ACCEPT=FHIR_JSON)

    assert response.status_code == 404
    assert validate(response.json()).issue[0].code == "not-found"
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get()
    assert (event.action, event.path, event.outcome) == ("fhir.unknown_path", path, "denied")


def test_a_broken_token_with_an_xml_accept_is_a_recorded_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer")

    response = client.get("/fhir/R4/Patient", HTTP_ACCEPT="application/fhir+xml")

    assert response.status_code == 401
    assert validate(response.json()).issue[0].code == "login"
    assert AuditEvent.objects.get().status_code == 401
