"""The OpenAPI schema documents every patient parameter, header and error."""

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

BASE = "/api/patient/patients/"


@pytest.fixture(scope="module")
def paths() -> dict[str, Any]:
    return dict(SchemaGenerator().get_schema(request=None, public=True)["paths"])


def parameters(operation: dict[str, Any], location: str = "query") -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == location}


def test_the_list_documents_every_filter_and_page_parameter(paths: dict[str, Any]) -> None:
    operation = paths[BASE]["get"]

    assert parameters(operation) == {
        "search",
        "mrn",
        "gender",
        "age_min",
        "age_max",
        "ordering",
        "page",
        "page_size",
        "include_archived",
    }
    ordering = next(p for p in operation["parameters"] if p["name"] == "ordering")
    assert set(ordering["schema"]["items"]["enum"]) == {
        "full_name",
        "-full_name",
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "age",
        "-age",
        "mrn",
        "-mrn",
    }


def test_search_documents_a_required_q_and_its_filters(paths: dict[str, Any]) -> None:
    operation = paths[f"{BASE}search/"]["get"]

    assert parameters(operation) == {
        "q",
        "gender",
        "age_min",
        "age_max",
        "page",
        "page_size",
        "include_archived",
    }
    assert next(p for p in operation["parameters"] if p["name"] == "q")["required"] is True


def test_conditional_requests_are_documented(paths: dict[str, Any]) -> None:
    detail = paths[f"{BASE}{{id}}/"]

    assert "ETag" in detail["get"]["responses"]["200"]["headers"]
    assert "ETag" in detail["patch"]["responses"]["200"]["headers"]
    assert "If-Match" in parameters(detail["patch"], "header")
    assert "If-Match" in parameters(detail["delete"], "header")
    assert "412" in detail["patch"]["responses"]
    assert "412" in detail["delete"]["responses"]
    assert "412" not in detail["get"]["responses"]
    assert "put" not in detail


def test_every_patient_operation_documents_the_error_envelope(paths: dict[str, Any]) -> None:
    for path, operations in paths.items():
        if not path.startswith(BASE):
            continue
        for operation in operations.values():
            for code in ("400", "401", "403", "404"):
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, code)


def test_the_create_body_is_the_allow_list(paths: dict[str, Any]) -> None:
    operation = paths[BASE]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    component = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"][
        ref.rsplit("/", 1)[1]
    ]

    assert set(component["properties"]) == {
        "full_name",
        "email",
        "phone",
        "date_of_birth",
        "age",
        "gender",
        "address",
        "notes",
        "mrn",
        "confirm_new",
        "reason",
    }
    assert component["required"] == ["full_name"]
