"""The documents block of a patient's summary, from real documents."""

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from document.models import Document, DocumentType
from document.selectors import SUMMARY_FIELDS, document_summary_for_patient
from patient.models import Patient
from tests.factories import DocumentFactory, PatientFactory


def make_documents(patient: Patient) -> list[Document]:
    """Seven active documents, oldest first, plus ones the summary must ignore."""
    now = timezone.now()
    documents = []
    for age_days, document_type, uploaded, size in [
        (9, "medical_report", True, 100),
        (8, "lab_result", True, 200),
        (7, "lab_result", False, 5000),
        (6, "imaging", True, 300),
        (5, "consent_form", True, 400),
        (4, "other", False, 6000),
        (3, "referral", True, 500),
    ]:
        document = DocumentFactory.create(
            patient=patient, document_type=document_type, uploaded=uploaded, size_bytes=size
        )
        Document.objects.filter(pk=document.pk).update(created_at=now - timedelta(days=age_days))
        documents.append(document)
    DocumentFactory.create(patient=patient, uploaded=True, size_bytes=9999, is_active=False)
    DocumentFactory.create(
        patient=PatientFactory.create(organization=patient.organization), uploaded=True
    )
    return documents


def test_the_summary_counts_a_patients_active_documents_in_two_queries(
    patient: Patient, django_assert_num_queries: Any
) -> None:
    documents = make_documents(patient)

    # 1 the aggregate (counts, bytes, by type), 2 the five latest documents
    with django_assert_num_queries(2):
        summary = document_summary_for_patient(patient=patient)

    assert summary["total"] == 7
    assert summary["uploaded"] == 5
    assert summary["pending"] == 2
    assert summary["total_bytes"] == 1500
    assert summary["by_type"] == {
        DocumentType.MEDICAL_REPORT: 1,
        DocumentType.LAB_RESULT: 2,
        DocumentType.PRESCRIPTION: 0,
        DocumentType.IMAGING: 1,
        DocumentType.INSURANCE: 0,
        DocumentType.CONSENT_FORM: 1,
        DocumentType.REFERRAL: 1,
        DocumentType.OTHER: 1,
    }
    assert [row["id"] for row in summary["latest"]] == [d.pk for d in documents[::-1][:5]]
    assert set(summary["latest"][0]) == set(SUMMARY_FIELDS)


def test_the_summary_of_a_patient_without_documents_is_zeros(patient: Patient) -> None:
    summary = document_summary_for_patient(patient=patient)

    assert (summary["total"], summary["uploaded"], summary["pending"]) == (0, 0, 0)
    assert summary["total_bytes"] == 0
    assert set(summary["by_type"].values()) == {0}
    assert len(summary["by_type"]) == 8
    assert summary["latest"] == []


def test_the_patient_summary_endpoint_shows_the_documents(
    as_staff: APIClient, patient: Patient
) -> None:
    documents = make_documents(patient)

    response = as_staff.get(f"/api/patient/patients/{patient.pk}/summary/")

    assert response.status_code == 200
    block = response.json()["documents"]
    assert (block["total"], block["uploaded"], block["pending"], block["total_bytes"]) == (
        7,
        5,
        2,
        1500,
    )
    assert block["by_type"]["lab_result"] == 2
    assert block["latest"][0]["id"] == documents[-1].pk
    assert block["latest"][0]["document_type"] == "referral"
    assert "object_name" not in block["latest"][0]
