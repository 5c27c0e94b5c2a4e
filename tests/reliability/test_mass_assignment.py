"""Mass assignment: no write endpoint lets a client set a server-owned field.

Two views of the same rule (docs/architecture.md, "Roles"): the OpenAPI schema of every request
body lists none of the server-owned names, and each write endpoint, sent a valid body plus forged
values for all of them, stores the server's values.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import Organization, User
from document.models import Document
from document.storage import get_storage
from patient.models import Patient
from tests.factories import DocumentFactory, PatientFactory

SERVER_OWNED = {
    "organization",
    "organization_id",
    "created_by",
    "version",
    "object_name",
    "is_uploaded",
    "uploaded_at",
    "uploaded_by",
    "checksum",
    "is_active",
    "archived_at",
}
PDF = b"%PDF-1.7"


def _request_schemas(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    components = schema["components"]["schemas"]
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                body = components[ref.rsplit("/", 1)[-1]] if ref else media.get("schema", {})
                found.append((f"{method.upper()} {path}", body))
    return found


def _property_names(body: dict[str, Any], components: dict[str, Any]) -> set[str]:
    """Property names of a body schema, through oneOf/anyOf/allOf and $refs."""
    if "$ref" in body:
        return _property_names(components[body["$ref"].rsplit("/", 1)[-1]], components)
    names = set(body.get("properties", {}))
    for key in ("oneOf", "anyOf", "allOf"):
        for part in body.get(key, []):
            names |= _property_names(part, components)
    return names


def test_no_request_body_in_the_schema_offers_a_server_owned_field() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    bodies = _request_schemas(schema)
    assert len(bodies) > 10, "the schema should have request bodies"

    offered = {
        operation: sorted(_property_names(body, schema["components"]["schemas"]) & SERVER_OWNED)
        for operation, body in bodies
    }

    assert {operation: names for operation, names in offered.items() if names} == {}


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def as_clinician(client_for: Callable[[User], APIClient], clinician: User) -> APIClient:
    return client_for(clinician)


@pytest.fixture
def forged(other_organization: Organization, foreign_clinician: User) -> dict[str, Any]:
    """Values an attacker would like stored: another clinic, another author, a chosen state."""
    return {
        "organization": other_organization.pk,
        "organization_id": other_organization.pk,
        "created_by": foreign_clinician.pk,
        "version": 99,
        "object_name": "../../other-clinic/secret.pdf",
        "is_uploaded": True,
        "uploaded_at": "2020-01-01T00:00:00Z",
        "uploaded_by": foreign_clinician.pk,
        "checksum": "md5:forged",
        "is_active": False,
        "archived_at": "2020-01-01T00:00:00Z",
        "id": 987654,
    }


def _accepted(response: Any, status: int) -> dict[str, Any]:
    """Either ignored (the expected status) or rejected field by field (400) is fine; anything
    else is not. Returns the body of an accepted write."""
    assert response.status_code in (status, 400), response.content
    if response.status_code == 400:
        details = response.json()["error"]["details"]
        assert set(details) <= SERVER_OWNED | {"id"}, details
    return dict(response.json())


def test_creating_a_patient_stores_the_servers_values(
    as_clinician: APIClient, clinician: User, organization: Organization, forged: dict[str, Any]
) -> None:
    body = _accepted(
        as_clinician.post(
            "/api/patient/patients/", {"full_name": "Ada Byron", "age": 36, **forged}, format="json"
        ),
        201,
    )

    patient = Patient.objects.get(full_name="Ada Byron")
    assert patient.pk == body["id"] != forged["id"]
    assert patient.organization == organization
    assert patient.created_by == clinician
    assert (patient.version, patient.is_active, patient.archived_at) == (1, True, None)


def test_updating_a_patient_keeps_the_servers_values(
    as_clinician: APIClient, organization: Organization, forged: dict[str, Any]
) -> None:
    patient = PatientFactory.create(organization=organization)
    mrn = patient.mrn

    _accepted(
        as_clinician.patch(
            f"/api/patient/patients/{patient.pk}/",
            {"notes": "Seen today", "mrn": "FORGED-1", **forged},
            format="json",
        ),
        200,
    )

    patient.refresh_from_db()
    assert patient.notes == "Seen today"
    assert patient.organization == organization
    assert patient.created_by is None
    assert (patient.mrn, patient.version, patient.is_active) == (mrn, 2, True)


def _document_body(patient: Patient) -> dict[str, Any]:
    return {
        "patient_id": patient.pk,
        "document_type": "lab_result",
        "filename": "result.pdf",
        "content_type": "application/pdf",
        "size_bytes": len(PDF),
    }


def _assert_pending_and_server_named(document: Document, organization: Organization) -> None:
    assert document.organization == organization
    assert (document.is_uploaded, document.uploaded_at, document.checksum) == (False, None, "")
    assert document.uploaded_by is not None
    assert document.object_name.startswith(f"documents/{organization.pk}/")
    assert ".." not in document.object_name


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("url", ["/api/document/documents/", "/api/document/sign-upload/"])
def test_creating_a_document_stores_the_servers_values(
    as_clinician: APIClient,
    clinician: User,
    organization: Organization,
    forged: dict[str, Any],
    url: str,
) -> None:
    patient = PatientFactory.create(organization=organization)

    _accepted(as_clinician.post(url, {**_document_body(patient), **forged}, format="json"), 201)

    document = Document.objects.get()
    _assert_pending_and_server_named(document, organization)
    assert document.uploaded_by == clinician
    assert document.pk != forged["id"]


@pytest.mark.usefixtures("media_root")
def test_updating_a_document_changes_only_its_metadata(
    as_clinician: APIClient,
    organization: Organization,
    other_organization: Organization,
    forged: dict[str, Any],
) -> None:
    document = DocumentFactory.create(patient=PatientFactory.create(organization=organization))
    elsewhere = PatientFactory.create(organization=other_organization)
    fixed = {
        name: getattr(document, name)
        for name in ("patient_id", "object_name", "content_type", "size_bytes", "checksum")
    }

    _accepted(
        as_clinician.patch(
            f"/api/document/documents/{document.pk}/",
            {
                "title": "Renamed",
                "patient": elsewhere.pk,
                "patient_id": elsewhere.pk,
                "content_type": "text/html",
                "size_bytes": 1,
                **forged,
            },
            format="json",
        ),
        200,
    )

    document.refresh_from_db()
    assert document.title == "Renamed"
    assert {name: getattr(document, name) for name in fixed} == fixed
    assert (document.organization, document.is_uploaded, document.is_active) == (
        organization,
        False,
        True,
    )


@pytest.mark.usefixtures("media_root")
def test_confirming_takes_size_type_and_checksum_from_storage_only(
    as_clinician: APIClient, organization: Organization, forged: dict[str, Any]
) -> None:
    document = DocumentFactory.create(
        patient=PatientFactory.create(organization=organization), size_bytes=len(PDF)
    )
    get_storage().write(  # type: ignore[attr-defined]
        document.object_name, [PDF], content_type="application/pdf", max_bytes=len(PDF)
    )

    _accepted(
        as_clinician.post(
            "/api/document/confirm/",
            {"document_id": document.pk, "size_bytes": 10**9, **forged},
            format="json",
        ),
        200,
    )

    document.refresh_from_db()
    assert document.is_uploaded
    assert document.checksum not in ("", forged["checksum"])
    assert document.size_bytes == len(PDF)
    assert document.organization == organization
