"""FHIR DocumentReference: the mapping, read, search, and the attachment's redirect."""

from datetime import UTC, datetime

import pytest

from audit.models import AuditEvent
from document.models import Document
from tests.factories import DocumentFactory, PatientFactory
from tests.fhir.conftest import fhir_get


def ids(bundle):
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def test_the_document_maps_type_content_and_subject(as_clinician, organization):
    document = DocumentFactory.create(
        patient=PatientFactory.create(organization=organization),
        document_type="lab_result",
        title="CBC panel",
        size_bytes=2048,
        uploaded=True,
    )

    response = fhir_get(as_clinician, f"/fhir/R4/DocumentReference/{document.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["type"]["coding"] == [
        {"system": "urn:pms:document-type", "code": "lab_result", "display": "Lab result"},
        {"system": "http://loinc.org", "code": "11502-2", "display": "Laboratory report"},
    ]
    assert body["subject"] == {"reference": f"Patient/{document.patient_id}"}
    assert (body["status"], body["docStatus"]) == ("current", "final")
    attachment = body["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert (attachment["size"], attachment["title"]) == (2048, "CBC panel")
    assert attachment["url"] == (f"http://testserver/fhir/R4/DocumentReference/{document.pk}/file")
    assert "signature" not in response.content.decode().lower()


def test_a_pending_document_has_no_file_url(as_clinician, organization):
    document = DocumentFactory.create(patient=PatientFactory.create(organization=organization))

    body = fhir_get(as_clinician, f"/fhir/R4/DocumentReference/{document.pk}").json()

    assert body["docStatus"] == "preliminary"
    assert "url" not in body["content"][0]["attachment"]


def test_the_type_without_a_loinc_match_has_only_our_code(as_clinician, organization):
    document = DocumentFactory.create(
        patient=PatientFactory.create(organization=organization), document_type="insurance"
    )

    body = fhir_get(as_clinician, f"/fhir/R4/DocumentReference/{document.pk}").json()

    assert [coding["system"] for coding in body["type"]["coding"]] == ["urn:pms:document-type"]


@pytest.mark.parametrize("state", ["archived document", "archived patient", "other clinic"])
def test_hidden_documents_are_not_found(as_clinician, organization, other_organization, state):
    patient = PatientFactory.create(
        organization=other_organization if state == "other clinic" else organization,
        is_active=state != "archived patient",
    )
    document = DocumentFactory.create(patient=patient, is_active=state != "archived document")

    for path in ("", "/file"):
        response = fhir_get(as_clinician, f"/fhir/R4/DocumentReference/{document.pk}{path}")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"


@pytest.fixture
def documents(organization, other_organization):
    jane = PatientFactory.create(organization=organization)
    john = PatientFactory.create(organization=organization)
    rows = {
        "jane_lab": DocumentFactory.create(patient=jane, document_type="lab_result"),
        "jane_rx": DocumentFactory.create(patient=jane, document_type="prescription"),
        "john_lab": DocumentFactory.create(patient=john, document_type="lab_result"),
        "john_other": DocumentFactory.create(patient=john, document_type="other"),
        "foreign": DocumentFactory.create(
            patient=PatientFactory.create(organization=other_organization),
            document_type="lab_result",
        ),
    }
    Document.objects.filter(pk=rows["jane_lab"].pk).update(
        created_at=datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    )
    Document.objects.filter(pk=rows["john_lab"].pk).update(
        created_at=datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
    )
    return {"jane": jane.pk, "john": john.pk, **{k: str(v.pk) for k, v in rows.items()}}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"patient": "{jane}"}, {"jane_lab", "jane_rx"}),
        ({"patient": "Patient/{john}"}, {"john_lab", "john_other"}),
        ({"subject": "Patient/{john}"}, {"john_lab", "john_other"}),
        ({"type": "lab_result"}, {"jane_lab", "john_lab"}),
        ({"type": "urn:pms:document-type|prescription"}, {"jane_rx"}),
        ({"type": "http://loinc.org|11502-2"}, {"jane_lab", "john_lab"}),
        ({"type": "other,prescription"}, {"jane_rx", "john_other"}),
        ({"date": "2024"}, {"jane_lab"}),
        ({"date": "2025-07-01"}, {"john_lab"}),
        ({"date": "lt2025"}, {"jane_lab"}),
        ({"date": "ge2025-07-01T09:30:00Z"}, {"john_lab", "jane_rx", "john_other"}),
        ({"patient": "{jane}", "type": "lab_result"}, {"jane_lab"}),
        ({"patient": "{john}", "type": "lab_result", "date": "2025"}, {"john_lab"}),
        ({"patient": "{john}", "date": "2024"}, set()),
    ],
)
def test_each_document_search_parameter_alone_and_combined(
    as_clinician, documents, query, expected
):
    query = {key: value.format(**documents) for key, value in query.items()}

    response = fhir_get(as_clinician, "/fhir/R4/DocumentReference", query)

    assert response.status_code == 200, response.content
    bundle = response.json()
    assert bundle["total"] == len(expected)
    assert set(ids(bundle)) == {documents[name] for name in expected}


def test_a_search_by_another_clinics_patient_finds_nothing(
    as_clinician, documents, foreign_patient
):
    bundle = fhir_get(
        as_clinician, "/fhir/R4/DocumentReference", {"patient": foreign_patient.pk}
    ).json()

    assert (bundle["total"], ids(bundle)) == (0, [])


def test_count_pages_the_documents(as_clinician, documents):
    bundle = fhir_get(as_clinician, "/fhir/R4/DocumentReference", {"_count": 3}).json()

    assert (bundle["total"], len(bundle["entry"])) == (4, 3)
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]


@pytest.mark.parametrize("query", [{"type": "x-ray"}, {"patient": "Jane"}, {"date": "ap2024"}])
def test_a_bad_document_parameter_is_a_400(as_clinician, documents, query):
    response = fhir_get(as_clinician, "/fhir/R4/DocumentReference", query)

    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == list(query)


def test_a_document_search_records_the_patients_of_its_documents(as_clinician, documents):
    fhir_get(as_clinician, "/fhir/R4/DocumentReference", {"type": "lab_result"})

    event = AuditEvent.objects.get(action="document.fhir_search")
    assert sorted(event.patient_ids) == sorted([documents["jane"], documents["john"]])


def test_the_file_url_redirects_to_a_fresh_signed_url_and_is_audited(
    as_clinician, organization, fhir_local_storage
):
    document = DocumentFactory.create(
        patient=PatientFactory.create(organization=organization), uploaded=True
    )

    response = as_clinician.get(f"/fhir/R4/DocumentReference/{document.pk}/file")

    assert response.status_code == 302
    assert response["Location"].startswith("http://testserver/api/document/files/")
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get()
    assert (event.action, event.patient_ids, event.status_code) == (
        "document.download_url",
        [document.patient_id],
        302,
    )


def test_staff_may_not_follow_the_file_url(as_staff, organization):
    document = DocumentFactory.create(
        patient=PatientFactory.create(organization=organization), uploaded=True
    )

    response = fhir_get(as_staff, f"/fhir/R4/DocumentReference/{document.pk}/file")

    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert AuditEvent.objects.get().outcome == "denied"


def test_a_pending_documents_file_url_is_a_conflict(as_clinician, organization):
    document = DocumentFactory.create(patient=PatientFactory.create(organization=organization))

    response = fhir_get(as_clinician, f"/fhir/R4/DocumentReference/{document.pk}/file")

    assert response.status_code == 409
    assert response.json()["issue"][0]["code"] == "conflict"


def test_the_document_search_costs_the_same_queries_whatever_the_page_size(
    as_clinician, organization, django_assert_num_queries, bounded_queries
):
    patient = PatientFactory.create(organization=organization)
    DocumentFactory.create_batch(30, patient=patient, uploaded=True)
    for size in (1, 25):
        # 1. the capped count  2. the page of documents  3. the audit event; on PostgreSQL
        # the statement timeout's statements around 1 and 2
        with django_assert_num_queries(3 + bounded_queries):
            response = fhir_get(as_clinician, "/fhir/R4/DocumentReference", {"_count": size})
        assert len(response.json()["entry"]) == size


def test_a_document_read_costs_two_queries(as_clinician, organization, django_assert_num_queries):
    document = DocumentFactory.create(patient=PatientFactory.create(organization=organization))

    # 1. the document (scoped, with its patient active)  2. the audit event
    with django_assert_num_queries(2):
        assert (
            fhir_get(as_clinician, f"/fhir/R4/DocumentReference/{document.pk}").status_code == 200
        )
