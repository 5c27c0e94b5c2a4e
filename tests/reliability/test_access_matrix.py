"""The access matrix of the API (docs/architecture.md, "Access control"), generated from the URL
configuration.

Every patient, document, audit and FHIR route × method (walked from the resolver, as the audit
coverage test does) × actor (anonymous, staff, clinician, admin of the clinic, a clinician of
another clinic) × the object named (our clinic's or the other clinic's). Expected: 401
anonymous; 403 when the role may not (whichever object: it confirms nothing); 404 for the other
clinic's object; else the route's success status. Every denied request leaves the data exactly
as it was.

A route missing from `EXPECTATIONS` fails `test_every_route_has_an_expectation`. FHIR routes
answer their errors as OperationOutcome: the issue type is checked instead of the envelope's code.
"""

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Organization, Role, User
from document.models import Document
from document.services import document_sign_download, document_sign_upload
from document.storage import get_storage
from fhir.export import export_run
from fhir.models import ExportJob
from patient.models import Patient
from patient.services import patient_merge
from tests.audit.test_coverage import audited_endpoints
from tests.db import built_once
from tests.factories import DocumentFactory, OrganizationFactory, PatientFactory, UserFactory
from tests.writes import writes_recorded

STAFF, CLINICIAN, ADMIN = "staff", "clinician", "admin"
EVERY_ROLE = frozenset({STAFF, CLINICIAN, ADMIN})
CLINICAL = frozenset({CLINICIAN, ADMIN})
ACTORS = ("anonymous", STAFF, CLINICIAN, ADMIN, "foreign")
PDF = b"%PDF-1.7"


@dataclass(frozen=True)
class Rule:
    """Who may call a route, and what a permitted call answers.

    `names_object`: the request names one record (in the path, body or query), so naming the
    other clinic's record must answer 404. `signed`: authorised by the signed URL's token
    instead of a JWT (the local storage file endpoints).
    """

    roles: frozenset[str]
    success: int
    names_object: bool = True
    signed: bool = False


EXPECTATIONS: dict[tuple[str, str], Rule] = {
    ("GET", "patient-list"): Rule(EVERY_ROLE, 200, names_object=False),
    ("POST", "patient-list"): Rule(EVERY_ROLE, 201, names_object=False),
    ("GET", "patient-search"): Rule(EVERY_ROLE, 200, names_object=False),
    ("GET", "patient-detail"): Rule(EVERY_ROLE, 200),
    ("PATCH", "patient-detail"): Rule(EVERY_ROLE, 200),
    ("DELETE", "patient-detail"): Rule(CLINICAL, 204),
    ("GET", "patient-history"): Rule(EVERY_ROLE, 200),
    ("POST", "patient-restore"): Rule(frozenset({ADMIN}), 200),
    ("GET", "patient-summary"): Rule(EVERY_ROLE, 200),
    ("GET", "patient-duplicates"): Rule(EVERY_ROLE, 200),
    ("POST", "patient-merge"): Rule(CLINICAL, 200),
    ("POST", "patient-unmerge"): Rule(CLINICAL, 200),
    ("POST", "document-sign-upload"): Rule(EVERY_ROLE, 201),
    ("POST", "document-confirm"): Rule(EVERY_ROLE, 200),
    ("GET", "document-list"): Rule(EVERY_ROLE, 200, names_object=False),
    ("POST", "document-list"): Rule(EVERY_ROLE, 201),
    ("GET", "document-by-patient"): Rule(EVERY_ROLE, 200),
    ("GET", "document-stats"): Rule(EVERY_ROLE, 200),
    ("GET", "document-detail"): Rule(EVERY_ROLE, 200),
    ("PATCH", "document-detail"): Rule(EVERY_ROLE, 200),
    ("DELETE", "document-detail"): Rule(CLINICAL, 204),
    ("GET", "document-download-url"): Rule(CLINICAL, 200),
    ("POST", "document-upload-url"): Rule(EVERY_ROLE, 200),
    ("GET", "audit-event-list"): Rule(frozenset({ADMIN}), 200, names_object=False),
    ("GET", "document-file"): Rule(EVERY_ROLE, 200, signed=True),
    ("PUT", "document-file"): Rule(EVERY_ROLE, 200, signed=True),
    ("GET", "fhir-patient-list"): Rule(EVERY_ROLE, 200, names_object=False),
    ("GET", "fhir-patient-detail"): Rule(EVERY_ROLE, 200),
    ("GET", "fhir-documentreference-list"): Rule(EVERY_ROLE, 200, names_object=False),
    ("GET", "fhir-documentreference-detail"): Rule(EVERY_ROLE, 200),
    ("GET", "fhir-documentreference-file"): Rule(CLINICAL, 302),
    ("GET", "fhir-patient-export"): Rule(frozenset({ADMIN}), 202, names_object=False),
    ("GET", "fhir-group-export"): Rule(frozenset({ADMIN}), 202),
    ("GET", "fhir-export-status"): Rule(frozenset({ADMIN}), 200),
    ("DELETE", "fhir-export-status"): Rule(frozenset({ADMIN}), 202),
    ("GET", "fhir-export-file"): Rule(frozenset({ADMIN}), 200),
}

ROUTES = sorted({(method.upper(), pattern.name) for _, pattern, method in audited_endpoints()})


def test_every_route_has_an_expectation() -> None:
    assert ROUTES, "the URL walk found no route"
    assert [route for route in ROUTES if route not in EXPECTATIONS] == []
    assert [route for route in EXPECTATIONS if route not in ROUTES] == []


@dataclass
class Clinic:
    organization: Organization
    patient: Patient
    archived: Patient
    pending: Document
    uploaded: Document
    # Another record of `patient`'s (merge), and a record merged into `patient` (unmerge).
    duplicate: Patient
    merged: Patient
    export: ExportJob  # finished, requested by the clinic's admin


@dataclass
class World:
    ours: Clinic
    theirs: Clinic
    users: dict[str, User]


def _clinic(organization: Organization, admin: User) -> Clinic:
    storage = get_storage()
    patient = PatientFactory.create(organization=organization, full_name="Jane Doe")
    archived = PatientFactory.create(organization=organization, is_active=False)
    pending = DocumentFactory.create(patient=patient, size_bytes=len(PDF))
    uploaded = DocumentFactory.create(patient=patient, size_bytes=len(PDF), uploaded=True)
    for document in (pending, uploaded):
        # Both hold their bytes: confirm and download can succeed when they are allowed.
        storage.write(  # type: ignore[attr-defined]
            document.object_name, [PDF], content_type="application/pdf", max_bytes=len(PDF)
        )
    export = ExportJob.objects.create(
        organization=organization,
        requested_by=admin,
        request_url="http://testserver/fhir/R4/Patient/$export",
        base_url="http://testserver",
        types=["Patient"],
    )
    export_run(job_id=export.pk)
    export.refresh_from_db()
    duplicate = PatientFactory.create(organization=organization, full_name="Jane Doe")
    merged = PatientFactory.create(organization=organization, full_name="Jane Doe")
    actor = UserFactory.create(role=Role.CLINICIAN, organization=organization)
    patient_merge(actor=actor, target=patient, source=merged)
    patient.refresh_from_db()
    return Clinic(organization, patient, archived, pending, uploaded, duplicate, merged, export)


@pytest.fixture(scope="module")
def built_world(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, Path]]:
    """Both clinics, built once for the module (`tests.db.built_once`); each test gets its own
    copy of the files (`world`)."""
    media = tmp_path_factory.mktemp("access-matrix") / "media"
    with (
        override_settings(STORAGE_BACKEND="local", MEDIA_ROOT=media),
        built_once(django_db_blocker),
    ):
        organization = OrganizationFactory.create(name="Northside Clinic", slug="northside")
        other = OrganizationFactory.create(name="Southside Clinic", slug="southside")
        users = {
            STAFF: UserFactory.create(role=Role.STAFF, organization=organization),
            CLINICIAN: UserFactory.create(role=Role.CLINICIAN, organization=organization),
            ADMIN: UserFactory.create(role=Role.ADMIN, organization=organization),
            "foreign": UserFactory.create(role=Role.CLINICIAN, organization=other),
        }
        their_admin = UserFactory.create(role=Role.ADMIN, organization=other)
        world = World(
            ours=_clinic(organization, users[ADMIN]),
            theirs=_clinic(other, their_admin),
            users=users,
        )
        yield world, media


@pytest.fixture
def world(built_world: tuple[World, Path], db: None, settings: Any, tmp_path: Path) -> World:
    world, media = built_world
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    shutil.copytree(media, settings.MEDIA_ROOT)
    return world


@dataclass(frozen=True)
class Call:
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _upload_body(clinic: Clinic) -> dict[str, Any]:
    return {
        "patient_id": clinic.patient.pk,
        "document_type": "lab_result",
        "filename": "result.pdf",
        "content_type": "application/pdf",
        "size_bytes": len(PDF),
    }


def _url(name: str, pk: int | None = None) -> str:
    return reverse(name, kwargs={"pk": pk} if pk is not None else None)


ASYNC = {"HTTP_PREFER": "respond-async"}


# How to call each route against a clinic's records.
CALLS: dict[tuple[str, str], Callable[[Clinic], Call]] = {
    ("GET", "patient-list"): lambda c: Call(_url("patient-list")),
    ("POST", "patient-list"): lambda c: Call(
        _url("patient-list"), {"full_name": "New Patient", "age": 40}
    ),
    ("GET", "patient-search"): lambda c: Call(_url("patient-search") + "?q=Doe"),
    ("GET", "patient-detail"): lambda c: Call(_url("patient-detail", c.patient.pk)),
    ("PATCH", "patient-detail"): lambda c: Call(
        _url("patient-detail", c.patient.pk), {"notes": "Changed"}
    ),
    ("DELETE", "patient-detail"): lambda c: Call(_url("patient-detail", c.patient.pk)),
    ("GET", "patient-history"): lambda c: Call(_url("patient-history", c.patient.pk)),
    ("POST", "patient-restore"): lambda c: Call(_url("patient-restore", c.archived.pk)),
    ("GET", "patient-summary"): lambda c: Call(_url("patient-summary", c.patient.pk)),
    ("GET", "patient-duplicates"): lambda c: Call(_url("patient-duplicates", c.patient.pk)),
    ("POST", "patient-merge"): lambda c: Call(
        _url("patient-merge", c.patient.pk), {"source": c.duplicate.pk}
    ),
    ("POST", "patient-unmerge"): lambda c: Call(
        _url("patient-unmerge", c.patient.pk), {"source": c.merged.pk}
    ),
    ("POST", "document-sign-upload"): lambda c: Call(_url("document-sign-upload"), _upload_body(c)),
    ("POST", "document-confirm"): lambda c: Call(
        _url("document-confirm"), {"document_id": c.pending.pk}
    ),
    ("GET", "document-list"): lambda c: Call(_url("document-list")),
    ("POST", "document-list"): lambda c: Call(_url("document-list"), _upload_body(c)),
    ("GET", "document-by-patient"): lambda c: Call(
        _url("document-by-patient") + f"?patient_id={c.patient.pk}"
    ),
    ("GET", "document-stats"): lambda c: Call(_url("document-stats") + f"?patient={c.patient.pk}"),
    ("GET", "document-detail"): lambda c: Call(_url("document-detail", c.uploaded.pk)),
    ("PATCH", "document-detail"): lambda c: Call(
        _url("document-detail", c.uploaded.pk), {"title": "Renamed"}
    ),
    ("DELETE", "document-detail"): lambda c: Call(_url("document-detail", c.uploaded.pk)),
    ("GET", "document-download-url"): lambda c: Call(_url("document-download-url", c.uploaded.pk)),
    ("POST", "document-upload-url"): lambda c: Call(_url("document-upload-url", c.pending.pk)),
    ("GET", "audit-event-list"): lambda c: Call(_url("audit-event-list")),
    ("GET", "fhir-patient-list"): lambda c: Call(_url("fhir-patient-list")),
    ("GET", "fhir-patient-detail"): lambda c: Call(_url("fhir-patient-detail", c.patient.pk)),
    ("GET", "fhir-documentreference-list"): lambda c: Call(_url("fhir-documentreference-list")),
    ("GET", "fhir-documentreference-detail"): lambda c: Call(
        _url("fhir-documentreference-detail", c.uploaded.pk)
    ),
    ("GET", "fhir-documentreference-file"): lambda c: Call(
        _url("fhir-documentreference-file", c.uploaded.pk)
    ),
    ("GET", "fhir-patient-export"): lambda c: Call(_url("fhir-patient-export"), headers=ASYNC),
    ("GET", "fhir-group-export"): lambda c: Call(
        reverse("fhir-group-export", kwargs={"group_id": c.organization.pk}), headers=ASYNC
    ),
    ("GET", "fhir-export-status"): lambda c: Call(
        reverse("fhir-export-status", kwargs={"key": c.export.key})
    ),
    ("DELETE", "fhir-export-status"): lambda c: Call(
        reverse("fhir-export-status", kwargs={"key": c.export.key})
    ),
    ("GET", "fhir-export-file"): lambda c: Call(
        reverse("fhir-export-file", kwargs={"key": c.export.key, "index": 0})
    ),
}


def stored_files(media_root: Path) -> list[tuple[str, bytes]]:
    """Every stored file with its bytes."""
    return sorted(
        (str(path.relative_to(media_root)), path.read_bytes())
        for path in media_root.rglob("*")
        if path.is_file()
    )


def expected_status(rule: Rule, actor: str, ownership: str) -> int:
    if actor == "anonymous":
        return 401
    role = CLINICIAN if actor == "foreign" else actor
    if role not in rule.roles:
        return 403
    own_clinic = "theirs" if actor == "foreign" else "ours"
    if rule.names_object and ownership != own_clinic:
        return 404
    return rule.success


ERROR_CODES = {401: "not_authenticated", 403: "permission_denied", 404: "not_found"}
FHIR_ISSUE_TYPES = {401: "login", 403: "forbidden", 404: "not-found"}


def error_code(route: tuple[str, str], response: Any) -> str:
    body = response.json()
    if route[1].startswith("fhir-"):
        return str(body["issue"][0]["code"])
    return str(body["error"]["code"])


def expected_code(route: tuple[str, str], status: int) -> str:
    return (FHIR_ISSUE_TYPES if route[1].startswith("fhir-") else ERROR_CODES)[status]


CELLS = [
    (route, actor, ownership)
    for route, rule in EXPECTATIONS.items()
    if not rule.signed
    for actor in ACTORS
    for ownership in (("ours", "theirs") if rule.names_object else ("ours",))
]


def client_as(actor: str, world: World, client_for: Callable[[User], APIClient]) -> APIClient:
    return APIClient() if actor == "anonymous" else client_for(world.users[actor])


@pytest.mark.parametrize(
    ("route", "actor", "ownership"),
    CELLS,
    ids=[f"{method} {name} as {actor} on {owner}" for (method, name), actor, owner in CELLS],
)
def test_the_access_matrix(
    world: World,
    client_for: Callable[[User], APIClient],
    settings: Any,
    route: tuple[str, str],
    actor: str,
    ownership: str,
) -> None:
    method, _ = route
    call = CALLS[route](world.ours if ownership == "ours" else world.theirs)
    expected = expected_status(EXPECTATIONS[route], actor, ownership)
    files = stored_files(settings.MEDIA_ROOT)

    send = getattr(client_as(actor, world, client_for), method.lower())
    with writes_recorded() as writes:
        response = send(call.url, call.body, format="json", **call.headers)

    assert response.status_code == expected, getattr(response, "content", response)
    if expected >= 400:
        assert error_code(route, response) == expected_code(route, expected)
        # Nothing changed: no write reached the database (but the audit trail's, which records
        # denied requests on purpose: tests/writes.py), and every file is as it was.
        assert writes == []
        assert stored_files(settings.MEDIA_ROOT) == files
    else:
        # A permitted list never shows a record of another clinic.
        other = world.ours if actor == "foreign" else world.theirs
        assert not patients_shown(route, response) & {other.patient.pk, other.archived.pk}


def patients_shown(route: tuple[str, str], response: Any) -> set[int]:
    """The patients a patient or document list page (or FHIR searchset) names."""
    if response.streaming or not response.content:
        return set()
    body = response.json()
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        return {
            int(
                resource["id"]
                if resource["resourceType"] == "Patient"
                else resource["subject"]["reference"].removeprefix("Patient/")
            )
            for resource in (entry["resource"] for entry in body.get("entry", []))
        }
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return set()
    key = LIST_PATIENT_KEYS.get(route[1])
    return {row[key] for row in body["results"]} if key else set()


# Where a list route's rows name their patient.
LIST_PATIENT_KEYS = {
    "patient-list": "id",
    "patient-search": "id",
    "document-list": "patient",
    "document-by-patient": "patient",
}


SIGNED_ROUTES = [route for route, rule in EXPECTATIONS.items() if rule.signed]


def _signed_url(method: str, clinic: Clinic) -> str:
    if method == "GET":
        return document_sign_download(document=clinic.uploaded).url
    return document_sign_upload(document=clinic.pending).url


def _send(client: APIClient, method: str, url: str) -> Any:
    if method == "PUT":
        return client.put(url, PDF, content_type="application/pdf")
    return client.get(url)


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("route", SIGNED_ROUTES, ids=[f"{m} {n}" for m, n in SIGNED_ROUTES])
def test_signed_file_urls_are_the_credential_whoever_calls(
    world: World,
    client_for: Callable[[User], APIClient],
    settings: Any,
    route: tuple[str, str],
    actor: str,
) -> None:
    method, _ = route
    client = client_as(actor, world, client_for)
    url = _signed_url(method, world.ours)
    token = url.rstrip("/").rsplit("/", 1)[-1]
    forged = url.replace(token, token[:-6] + ("AAAAAA" if token[-6:] != "AAAAAA" else "BBBBBB"))
    files = stored_files(settings.MEDIA_ROOT)

    with writes_recorded() as writes:
        refused = _send(client, method, forged)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert writes == []
    assert stored_files(settings.MEDIA_ROOT) == files
    assert _send(client, method, url).status_code == EXPECTATIONS[route].success
