"""The CapabilityStatement at /fhir/R4/metadata: what this server does, for FHIR clients."""

from typing import Any

from fhir.mappers import DOCUMENT_TYPE_SYSTEM
from pms import pagination
from pms.version import VERSION

_STRING, _TOKEN, _DATE, _REFERENCE = "string", "token", "date", "reference"
_SEARCH = "http://hl7.org/fhir/SearchParameter/"
_BULK = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"


def _params(*rows: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    return [
        {"name": name, "definition": _SEARCH + definition, "type": kind, "documentation": doc}
        for name, definition, kind, doc in rows
    ]


_COMMON = (
    ("_id", "Resource-id", _TOKEN, "The resource id."),
    ("_lastUpdated", "Resource-lastUpdated", _DATE, "eq, ge, le, gt, lt prefixes."),
)


def _paging() -> str:
    return (
        "Results come in a searchset Bundle with total (when exact) and self/next/previous "
        "links. _count: 1 to 100 per page (default 20); _page: the page; pages past the first "
        f"{pagination.MAX_RESULTS:,} results are refused (400). Unknown parameters are a 400 "
        "unless the request sends Prefer: handling=lenient."
    )


def capability_statement(*, base_url: str, date: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Patient Management System",
        "kind": "instance",
        "software": {"name": "Patient Management System API", "version": VERSION},
        "implementation": {"description": "Read-only FHIR R4 facade", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": _paging(),
                "security": {
                    "cors": False,
                    "description": (
                        "Send the API's JWT as Authorization: Bearer <access> (POST "
                        "/api/auth/token/). Rows are those of the caller's clinic; roles as in "
                        "the REST API; every read and search is audited."
                    ),
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "versioning": "versioned",
                        "readHistory": False,
                        "searchParam": _params(
                            *_COMMON,
                            (
                                "identifier",
                                "Patient-identifier",
                                _TOKEN,
                                "MRN as urn:pms:<clinic slug>:mrn|<mrn>, or the bare MRN.",
                            ),
                            ("name", "Patient-name", _STRING, "Any word of the name starts with."),
                            (
                                "family",
                                "individual-family",
                                _STRING,
                                "The family name starts with.",
                            ),
                            ("given", "individual-given", _STRING, "A given name starts with."),
                            ("birthdate", "individual-birthdate", _DATE, "eq, ge, le, gt, lt."),
                            (
                                "gender",
                                "individual-gender",
                                _TOKEN,
                                "male, female, other, unknown.",
                            ),
                        ),
                        "operation": [
                            {"name": "export", "definition": _BULK + "patient-export"},
                        ],
                    },
                    {
                        "type": "DocumentReference",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": _params(
                            *_COMMON,
                            ("patient", "clinical-patient", _REFERENCE, "Patient/<id> or <id>."),
                            (
                                "type",
                                "clinical-type",
                                _TOKEN,
                                f"{DOCUMENT_TYPE_SYSTEM}|<type> or a LOINC code.",
                            ),
                            ("date", "DocumentReference-date", _DATE, "eq, ge, le, gt, lt."),
                        ),
                    },
                    {
                        "type": "Group",
                        "documentation": "Group/<organization id> is the whole clinic.",
                        "operation": [{"name": "export", "definition": _BULK + "group-export"}],
                    },
                ],
            }
        ],
    }
