"""Every FHIR body a test reads is validated against the R4 models of `fhir.resources` (its
R4B package: R4's structures for these resources, on the pydantic in this venv)."""

import importlib
from typing import Any

import pytest
from rest_framework.test import APIClient

FHIR_JSON = "application/fhir+json"


def validate(resource: dict[str, Any]) -> Any:
    """The resource parsed by its fhir.resources model; raises on anything invalid."""
    name = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{name.lower()}")
    return getattr(module, name).model_validate(resource)


def fhir_get(client: APIClient, url: str, data: Any = None, **headers: Any) -> Any:
    """A GET as a FHIR client sends it; the body, when JSON, is checked to be valid FHIR."""
    response = client.get(url, data, HTTP_ACCEPT=FHIR_JSON, **headers)
    if response.get("Content-Type", "").startswith(FHIR_JSON) and response.content:
        validate(response.json())
    return response


@pytest.fixture
def fhir_local_storage(settings: Any, tmp_path: Any) -> Any:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
