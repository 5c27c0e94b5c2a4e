"""Each resource has one declared output (its serializer's `Meta.fields`): reads send its rows
(pms/representation.py), rendered with orjson (pms/renderers.py), equal to DRF's rendering."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from accounts.models import Organization, User
from document.models import Document
from document.serializers import DOCUMENT_OUTPUT, DocumentSerializer
from patient.models import Patient
from patient.selectors import patient_list
from patient.serializers import PATIENT_OUTPUT, PatientSerializer
from pms.renderers import ORJSONRenderer
from tests.factories import DocumentFactory, PatientFactory

PATIENTS = "/api/patient/patients/"
DOCUMENTS = "/api/document/documents/"


@pytest.fixture
def records(organization: Organization, clinician: User) -> tuple[Patient, Patient]:
    """A patient with a document, and an archived one merged into them, without a creator."""
    kept = PatientFactory.create(organization=organization, created_by=clinician)
    merged = PatientFactory.create(organization=organization, created_by=None)
    Patient.objects.filter(pk=merged.pk).update(
        is_active=False, archived_at=timezone.now() - timedelta(microseconds=7), merged_into=kept
    )
    DocumentFactory.create(patient=kept)
    DocumentFactory.create(patient=kept, uploaded=True)
    return kept, merged


def keys_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"emitted twice: {names}"
    return {"__keys__": names, **dict(pairs)}


def as_json(renderer: Any, data: Any) -> Any:
    return json.loads(renderer.render(data))


@pytest.mark.parametrize(
    ("path", "serializer"),
    [
        (PATIENTS, PatientSerializer),
        (f"{PATIENTS}?ordering=full_name", PatientSerializer),
        (f"{PATIENTS}{{kept}}/", PatientSerializer),
        (f"{PATIENTS}{{merged}}/", PatientSerializer),
        (DOCUMENTS, DocumentSerializer),
        (f"{DOCUMENTS}by_patient/?patient_id={{kept}}", DocumentSerializer),
    ],
)
def test_the_output_of_each_resource_equals_its_declared_fields_and_nothing_is_emitted_twice(
    client_for: Callable[[User], APIClient],
    clinician: User,
    records: tuple[Patient, Patient],
    path: str,
    serializer: Any,
) -> None:
    kept, merged = records
    response = client_for(clinician).get(path.format(kept=kept.pk, merged=merged.pk))
    body = json.loads(response.content, object_pairs_hook=keys_once)

    assert response.status_code == 200
    rows = body.get("results", [body])
    assert rows
    for row in rows:
        assert row["__keys__"] == list(serializer.Meta.fields)


def test_patient_rows_render_as_drf_renders_the_serializer(
    clinician: User, org_admin: User, records: tuple[Patient, Patient]
) -> None:
    patients = patient_list(user=org_admin, include_archived=True).order_by("pk")
    read = PATIENT_OUTPUT.rows(PATIENT_OUTPUT.values(patients))
    drf = [as_json(JSONRenderer(), PatientSerializer(patient).data) for patient in patients]

    assert as_json(ORJSONRenderer(), read) == drf
    assert [as_json(ORJSONRenderer(), PATIENT_OUTPUT.row_of(p)) for p in patients] == drf
    assert [row["created_by"] for row in drf] == [{"id": clinician.pk, "username": "carol"}, None]
    assert drf[1]["merged_into"] == records[0].pk


def test_document_rows_render_as_drf_renders_the_serializer(
    records: tuple[Patient, Patient],
) -> None:
    documents = Document.objects.order_by("pk")
    read = DOCUMENT_OUTPUT.rows(DOCUMENT_OUTPUT.values(documents))
    drf = [as_json(JSONRenderer(), DocumentSerializer(document).data) for document in documents]

    assert as_json(ORJSONRenderer(), read) == drf
    assert [row["uploaded_at"] is None for row in drf] == [True, False]


def test_an_indented_answer_is_asked_for_with_the_media_type(
    as_clinician: APIClient, records: tuple[Patient, Patient]
) -> None:
    compact = as_clinician.get(PATIENTS)
    indented = as_clinician.get(PATIENTS, HTTP_ACCEPT="application/json; indent=2")

    assert b"\n" not in compact.content
    assert indented.content.startswith(b'{\n  "count"')
    assert json.loads(indented.content) == json.loads(compact.content)
