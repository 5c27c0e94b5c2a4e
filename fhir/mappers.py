"""The one FHIR R4 representation of each resource (docs/fhir.md): plain dicts, validated
against the `fhir.resources` models in the tests rather than at runtime."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.urls import reverse

from document.models import Document, DocumentType
from patient.models import Gender, Patient

FHIR_GENDER = {
    Gender.MALE: "male",
    Gender.FEMALE: "female",
    Gender.OTHER: "other",
    Gender.UNKNOWN: "unknown",
}
GENDER_FROM_FHIR = {code: gender for gender, code in FHIR_GENDER.items()}

# Our own code system for the eight document types; `DOCUMENT_TYPE_LOINC` adds the LOINC
# document-ontology code where one means the same thing.
DOCUMENT_TYPE_SYSTEM = "urn:pms:document-type"
LOINC_SYSTEM = "http://loinc.org"
DOCUMENT_TYPE_LOINC = {
    DocumentType.MEDICAL_REPORT: ("11506-3", "Progress note"),
    DocumentType.LAB_RESULT: ("11502-2", "Laboratory report"),
    DocumentType.PRESCRIPTION: ("57833-6", "Prescription for medication"),
    DocumentType.IMAGING: ("18748-4", "Diagnostic imaging study"),
    DocumentType.CONSENT_FORM: ("59284-0", "Consent Document"),
    DocumentType.REFERRAL: ("57133-1", "Referral note"),
}
_IDENTIFIER_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical record number",
        }
    ]
}


def mrn_system(organization_slug: str) -> str:
    """The identifier system of a clinic's MRNs: MRNs are unique per clinic only."""
    return f"urn:pms:{organization_slug}:mrn"


def instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_name(full_name: str) -> dict[str, Any]:
    """`family` and `given` when the name splits plainly: "Doe, Jane" or "Jane Doe" (the last
    word is the family name). A single word is only `text`."""
    name: dict[str, Any] = {"use": "official", "text": full_name}
    if "," in full_name:
        family, _, given = (part.strip() for part in full_name.partition(","))
        words = given.split()
    else:
        *words, family = full_name.split() or [""]
        if not words:
            return name
    if family:
        name["family"] = family
    if words:
        name["given"] = words
    return name


def patient_resource(patient: Patient, *, organization_slug: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "meta": {"versionId": str(patient.version), "lastUpdated": instant(patient.updated_at)},
        "identifier": [
            {
                "use": "usual",
                "type": _IDENTIFIER_TYPE,
                "system": mrn_system(organization_slug),
                "value": patient.mrn,
            }
        ],
        "active": patient.is_active,
        "name": [parse_name(patient.full_name)],
        "gender": FHIR_GENDER[Gender(patient.gender)],
        # An estimated birth date (from an age) is only as precise as its year.
        "birthDate": (
            str(patient.date_of_birth.year)
            if patient.birth_date_estimated
            else patient.date_of_birth.isoformat()
        ),
    }
    telecom = []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone})
    if telecom:
        resource["telecom"] = telecom
    if patient.address.strip():
        resource["address"] = [{"text": patient.address.strip()}]
    # The identity work adds `merged_into`; until then no patient is merged.
    merged_into = getattr(patient, "merged_into_id", None)
    if merged_into is not None:
        resource["link"] = [
            {"other": {"reference": f"Patient/{merged_into}"}, "type": "replaced-by"}
        ]
    return resource


def document_type_concept(document_type: str) -> dict[str, Any]:
    label = DocumentType(document_type).label
    coding = [{"system": DOCUMENT_TYPE_SYSTEM, "code": document_type, "display": label}]
    loinc = DOCUMENT_TYPE_LOINC.get(DocumentType(document_type))
    if loinc:
        coding.append({"system": LOINC_SYSTEM, "code": loinc[0], "display": loinc[1]})
    return {"coding": coding, "text": label}


def document_reference_resource(document: Document, *, base_url: str) -> dict[str, Any]:
    """`base_url` makes the attachment's url absolute: the endpoint that redirects to a fresh
    signed URL (a signed URL would outlive the resource that carried it)."""
    attachment: dict[str, Any] = {
        "contentType": document.content_type,
        "size": document.size_bytes,
        "title": document.title,
    }
    if document.is_uploaded:
        path = reverse("fhir-documentreference-file", kwargs={"pk": document.pk})
        attachment["url"] = base_url + path
        attachment["creation"] = instant(document.uploaded_at or document.created_at)
    return {
        "resourceType": "DocumentReference",
        "id": str(document.pk),
        "meta": {"lastUpdated": instant(document.updated_at)},
        # Only active documents are served: archived ones are not found.
        "status": "current",
        "docStatus": "final" if document.is_uploaded else "preliminary",
        "type": document_type_concept(document.document_type),
        "subject": {"reference": f"Patient/{document.patient_id}"},
        "date": instant(document.created_at),
        "description": document.title,
        "content": [{"attachment": attachment}],
    }


def operation_outcome(
    *,
    code: str,
    diagnostics: str,
    severity: str = "error",
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`code` is from the FHIR issue-type value set; `details` name the offending parameters."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if details:
        issue["expression"] = sorted(str(key) for key in details)
    return {"resourceType": "OperationOutcome", "issue": [issue]}
