from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from patient.models import Patient
from tests.factories import PatientFactory

LIST_URL = "/api/patient/patients/"
SEARCH_URL = "/api/patient/patients/search/"


def detail_url(patient: Patient | int, suffix: str = "") -> str:
    pk = patient if isinstance(patient, int) else patient.pk
    return f"/api/patient/patients/{pk}/{suffix}"


@pytest.fixture
def patient(organization: Organization) -> Patient:
    return PatientFactory.create(organization=organization, full_name="John Doe")


@pytest.fixture
def as_foreign(client_for: Callable[[User], APIClient], foreign_clinician: User) -> APIClient:
    return client_for(foreign_clinician)


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def error_details(response: Any) -> dict[str, Any]:
    return dict(response.json()["error"]["details"])


def ids(response: Any) -> list[int]:
    return [row["id"] for row in response.json()["results"]]
