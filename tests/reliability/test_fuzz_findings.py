"""Regressions for the server errors the schema fuzzer found, kept as plain examples."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import User


@pytest.mark.parametrize("ordering", [",", ",,"])
def test_an_ordering_that_names_no_field_is_a_validation_error(
    client_for: Callable[[User], APIClient], clinician: User, ordering: str
) -> None:
    response = client_for(clinician).get("/api/patient/patients/", {"ordering": ordering})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "ordering" in response.json()["error"]["details"]


@pytest.mark.parametrize("offset", ["+19:44", "-15:26", "+00:00"])
def test_audit_date_filters_take_any_iso_offset(
    client_for: Callable[[User], APIClient], org_admin: User, offset: str
) -> None:
    response = client_for(org_admin).get(
        "/api/audit/events/",
        {
            "occurred_after": f"2020-08-14T20:14:20{offset}",
            "occurred_before": f"2203-04-06T01:35:32.667698{offset}",
        },
    )

    assert response.status_code == 200
    assert response.json()["results"] == []
