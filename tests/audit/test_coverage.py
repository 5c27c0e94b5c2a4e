"""Every patient, document and audit endpoint leaves exactly one event, found by walking the URL
configuration: a new endpoint without auditing fails here."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter

from audit.models import AuditEvent
from tests.factories import DocumentFactory, PatientFactory

AUDITED_PREFIXES = ("api/patient/", "api/document/", "api/audit/", "fhir/R4/")
SKIPPED_METHODS = {"options", "head", "trace"}
# Public and free of patient data, so not audited: the FHIR CapabilityStatement.
UNAUDITED_ROUTES = {"fhir/R4/metadata"}
PATIENT_ROUTES = ("api/patient/", "fhir/R4/Patient/")


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route, pattern


def _methods(pattern: URLPattern) -> list[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:  # a ViewSet route: the router's method -> action map
        return sorted(actions)
    view_class = callback.view_class  # type: ignore[attr-defined]
    return sorted(
        method
        for method in view_class.http_method_names
        if method not in SKIPPED_METHODS and hasattr(view_class, method)
    )


def audited_endpoints() -> list[tuple[str, URLPattern, str]]:
    endpoints: list[tuple[str, URLPattern, str]] = []
    for route, pattern in _routes(get_resolver().url_patterns):
        if route.startswith(AUDITED_PREFIXES) and route not in UNAUDITED_ROUTES:
            endpoints.extend((route, pattern, method) for method in _methods(pattern))
    return endpoints


ENDPOINTS = audited_endpoints()


def test_the_walk_finds_the_known_endpoints():
    routes = {route for route, _, _ in ENDPOINTS}
    assert any("patients/(?P<pk>" in route for route in routes)
    assert any(route.startswith("api/document/sign-upload/") for route in routes)
    assert any(route.startswith("api/audit/events") for route in routes)
    for action in ("duplicates", "merge", "unmerge"):
        assert any(route.endswith(f"/{action}/$") for route in routes), action
    assert any(route.startswith("fhir/R4/Patient/<str:pk>") for route in routes)
    assert any(route.startswith("fhir/R4/bulk-status/") for route in routes)
    walked = {route for route, _ in _routes(get_resolver().url_patterns)}
    assert walked >= UNAUDITED_ROUTES  # an exemption that no longer names a route fails
    assert len(ENDPOINTS) >= 30


def endpoint_url(pattern: URLPattern, route: str, patient_id: int, document_id: int) -> str:
    kwargs: dict[str, Any] = {}
    converters = getattr(pattern.pattern, "converters", {})
    for name in pattern.pattern.regex.groupindex:
        if name == "pk":
            kwargs[name] = patient_id if route.startswith(PATIENT_ROUTES) else document_id
        elif isinstance(converters.get(name), UUIDConverter):  # an export job nobody started
            kwargs[name] = uuid.uuid4()
        elif isinstance(converters.get(name), IntConverter):
            kwargs[name] = 0
        else:  # e.g. the local file token: a bad one still has to leave a trace
            kwargs[name] = "not-a-valid-token"
    return reverse(pattern.name, kwargs=kwargs)


@pytest.mark.parametrize(
    ("route", "pattern", "method"),
    ENDPOINTS,
    ids=[f"{method.upper()} {route}" for route, _, method in ENDPOINTS],
)
def test_every_endpoint_records_exactly_one_event(
    client_for, org_admin, organization, route, pattern, method
):
    patient = PatientFactory.create(organization=organization)
    document = DocumentFactory.create(patient=patient)
    url = endpoint_url(pattern, route, patient.pk, document.pk)
    before = AuditEvent.objects.count()

    response = client_for(org_admin).generic(
        method.upper(), url, json.dumps({}), content_type="application/json"
    )

    assert response.status_code < 500, response.content
    assert AuditEvent.objects.count() == before + 1, f"{method.upper()} {url} left no event"
    event = AuditEvent.objects.latest("id")
    assert event.method == method.upper()
    assert event.status_code == response.status_code


def test_a_list_page_records_exactly_the_patients_it_showed(client_for, clinician, organization):
    patients = PatientFactory.create_batch(3, organization=organization)

    response = client_for(clinician).get(
        "/api/patient/patients/", {"page_size": 2, "ordering": "mrn"}
    )

    shown = [row["id"] for row in response.json()["results"]]
    event = AuditEvent.objects.get(action="patient.list")
    assert event.patient_ids == shown
    assert len(shown) == 2
    assert set(shown) < {patient.pk for patient in patients}


def test_a_search_records_the_patients_it_found(client_for, clinician, organization):
    found = PatientFactory.create(organization=organization, full_name="Quentin Auditwell")
    PatientFactory.create(organization=organization, full_name="Someone Else")

    client_for(clinician).get("/api/patient/patients/search/", {"q": "auditwell"})

    event = AuditEvent.objects.get(action="patient.search")
    assert event.patient_ids == [found.pk]
    assert event.details["params"] == ["q"]


def test_who_accessed_a_patient_is_one_request(client_for, org_admin, clinician, organization):
    patient = PatientFactory.create(organization=organization)
    nurse = client_for(clinician)
    nurse.get("/api/patient/patients/")
    nurse.get(f"/api/patient/patients/{patient.pk}/")
    nurse.get(f"/api/patient/patients/{patient.pk}/summary/")

    response = client_for(org_admin).get("/api/audit/events/", {"patient": patient.pk})

    rows = response.json()["results"]
    assert sorted(row["action"] for row in rows) == [
        "patient.list",
        "patient.retrieve",
        "patient.summary",
    ]
    assert {row["actor_username"] for row in rows} == {"carol"}


def test_denied_access_is_recorded(client_for, foreign_clinician, staff_user, organization):
    patient = PatientFactory.create(organization=organization)
    document = DocumentFactory.create(patient=patient, is_uploaded=True)

    client_for(foreign_clinician).get(f"/api/patient/patients/{patient.pk}/")
    client_for(staff_user).get(f"/api/document/documents/{document.pk}/download_url/")

    foreign = AuditEvent.objects.get(action="patient.retrieve")
    assert (foreign.outcome, foreign.status_code) == ("denied", 404)
    assert foreign.actor_username == "charlie"
    assert foreign.resource_id == str(patient.pk)
    assert foreign.patient_ids == []  # the trail does not confirm what the caller could not see
    download = AuditEvent.objects.get(action="document.download_url")
    assert (download.outcome, download.status_code) == ("denied", 403)


def test_anonymous_access_is_recorded(api_client, db):
    api_client.get("/api/patient/patients/")

    event = AuditEvent.objects.get(action="patient.list")
    assert (event.outcome, event.status_code, event.actor) == ("denied", 401, None)


def test_no_phi_value_reaches_the_trail(client_for, clinician):
    client = client_for(clinician)
    created = client.post(
        "/api/patient/patients/",
        {
            "full_name": "Zebulon Quartzfield",
            "email": "zebulon.q@example.org",
            "phone": "+12025550187",
            "age": 41,
            "gender": "M",
            "notes": "allergic to penicillin",
        },
        format="json",
    ).json()
    client.patch(
        f"/api/patient/patients/{created['id']}/",
        {"notes": "asthma since childhood"},
        format="json",
    )
    client.get("/api/patient/patients/", {"search": "Quartzfield"})
    client.get("/api/patient/patients/search/", {"q": "zebulon"})

    trail = json.dumps(
        list(AuditEvent.objects.values("details", "path", "resource_id", "actor_username"))
    ).lower()
    for value in ("zebulon", "quartzfield", "example.org", "5550187", "penicillin", "asthma"):
        assert value not in trail
    update = AuditEvent.objects.get(action="patient.partial_update")
    assert update.details["fields"] == ["notes"]


@pytest.mark.parametrize("path", ["/api/patient/nothing/", "/api/document/documents/x/y/z/"])
def test_an_unknown_path_under_patient_data_is_a_recorded_404(client_for, clinician, path):
    response = client_for(clinician).get(path)

    assert response.status_code == 404
    event = AuditEvent.objects.get()
    assert (event.outcome, event.path, event.actor) == ("denied", path, clinician)


@pytest.mark.parametrize(
    ("route", "pattern", "method"),
    ENDPOINTS,
    ids=[f"{method.upper()} {route}" for route, _, method in ENDPOINTS],
)
@pytest.mark.parametrize("actor", ["org_admin", "foreign_clinician", None])
def test_every_patient_data_answer_is_no_store(
    request, client_for, api_client, organization, route, pattern, method, actor
):
    patient = PatientFactory.create(organization=organization)
    document = DocumentFactory.create(patient=patient, is_uploaded=True)
    client = client_for(request.getfixturevalue(actor)) if actor else api_client

    response = client.generic(
        method.upper(),
        endpoint_url(pattern, route, patient.pk, document.pk),
        json.dumps({}),
        content_type="application/json",
    )

    assert response["Cache-Control"] == "no-store", response.status_code
