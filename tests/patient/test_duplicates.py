"""The duplicate check at registration, in the API and the admin, and /duplicates/."""

from datetime import date
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, User
from audit.models import AuditEvent
from patient import services
from patient.duplicates import Identity, candidate_condition
from patient.models import Patient
from tests.factories import PatientFactory
from tests.patient.conftest import LIST_URL, detail_url, error_code, error_details
from tests.patient.test_create import SEED_BODY


@pytest.fixture
def registered(organization: Organization) -> dict[str, Patient]:
    def make(name: str, born: date, phone: str) -> Patient:
        return PatientFactory.create(
            organization=organization, full_name=name, date_of_birth=born, phone=phone
        )

    return {
        "john": make("John Smith", date(1980, 4, 3), "+12025550101"),
        "anna": make("Anna Kowalski", date(1990, 6, 15), "+12025550102"),
        "maria": make("Maria Kowalski", date(1990, 6, 15), "+12025550103"),
        "older john": make("John Smith", date(1975, 6, 1), "+12025550104"),
        # Registered with an age only: 1 January of the estimated year.
        "grace": PatientFactory.create(
            organization=organization,
            full_name="Grace Hopper",
            date_of_birth=date(1985, 1, 1),
            birth_date_estimated=True,
            phone="+12025550105",
        ),
    }


# The new registration, and the registered patients the check must find, best first.
MATCHING_TABLE = [
    pytest.param(
        {"full_name": "Jon Smith", "date_of_birth": date(1980, 3, 4)},
        ["john"],
        id="a typo in the name and day and month swapped",
    ),
    pytest.param(
        {"full_name": "Peter Brown", "date_of_birth": date(1961, 2, 2), "phone": "+12025550101"},
        ["john"],
        id="the same phone with a different name",
    ),
    pytest.param(
        {"full_name": "Maria Kowalsky", "date_of_birth": date(1990, 6, 15)},
        ["maria", "anna"],
        id="a true duplicate ranks above her twin",
    ),
    pytest.param(
        {"full_name": "John Smith", "date_of_birth": date(1990, 11, 20)},
        [],
        id="a namesake born on another day is no candidate",
    ),
    pytest.param(
        {"full_name": "John Smith", "born_in": 1980},
        ["john"],
        id="an age within a year of the birth date, and the same name",
    ),
    pytest.param(
        {"full_name": "Grace Hopper", "date_of_birth": date(1986, 7, 9)},
        ["grace"],
        id="a birth date within a year of a registered age, and a similar name",
    ),
    pytest.param(
        {"full_name": "Henry Ford", "date_of_birth": date(1986, 7, 9)},
        [],
        id="a birth date within a year of a registered age, and another name",
    ),
]


@pytest.mark.parametrize(("new", "expected"), MATCHING_TABLE)
def test_the_matching_table(
    organization: Organization,
    registered: dict[str, Patient],
    new: dict[str, Any],
    expected: list[str],
    settings: Any,
) -> None:
    if "born_in" in new:  # an age, as the seed client sends it
        new = {"full_name": new["full_name"], "age": timezone.localdate().year - new["born_in"]}
    candidates = services.duplicates_of_new(organization_id=organization.pk, data=new)

    assert [c.patient.pk for c in candidates] == [registered[name].pk for name in expected]
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(score >= settings.PATIENT_DUPLICATE_THRESHOLD for score in scores)
    if len(candidates) > 1:
        assert scores[0] > scores[1]  # strictly: the twin is ranked below


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize(("estimated", "operator"), [(True, "%>"), (False, "WORD_SIMILARITY(")])
def test_the_name_is_index_served_only_where_the_birth_dates_span_years(
    organization: Organization, estimated: bool, operator: str
) -> None:
    """Three years of births are narrowed by the name's trigram index (`%>`); three days are
    only filtered by it, through `word_similarity()`, which the planner does not estimate from
    the name's histogram (patient/duplicates.py, `_by_name`)."""
    patients = services.active_patients_of(organization.pk)
    new = Identity(
        full_name="Grace Hopper", date_of_birth=date(1986, 7, 9), birth_date_estimated=estimated
    )

    sql = str(patients.filter(candidate_condition(patients, new)).query)

    assert operator in sql
    assert ("%>" in sql) is estimated


def test_the_seed_body_posted_twice_is_a_possible_duplicate_until_confirmed(
    as_clinician: APIClient, organization: Organization
) -> None:
    first = as_clinician.post(LIST_URL, SEED_BODY, format="json")
    second = as_clinician.post(LIST_URL, SEED_BODY, format="json")

    assert first.status_code == 201
    assert second.status_code == 409
    assert error_code(second) == "possible_duplicate"
    assert error_details(second) == {
        "candidates": [
            {
                "id": first.json()["id"],
                "mrn": first.json()["mrn"],
                "score": 1.0,
                "matched": ["date_of_birth", "email", "full_name", "phone"],
            }
        ]
    }
    assert Patient.objects.filter(organization=organization).count() == 1

    confirmed = as_clinician.post(
        LIST_URL, {**SEED_BODY, "confirm_new": True, "reason": "father and son"}, format="json"
    )

    assert confirmed.status_code == 201
    assert Patient.objects.filter(organization=organization).count() == 2
    refused, created = AuditEvent.objects.filter(action="patient.create").order_by("id")[1:]
    assert (refused.status_code, refused.patient_ids) == (409, [first.json()["id"]])
    assert refused.details["error"] == "possible_duplicate"
    assert created.details["confirm_new"] is True
    assert created.details["reason"] == "father and son"
    assert created.patient_ids == [confirmed.json()["id"]]


def test_the_409_carries_no_patient_data_but_ids_mrns_scores_and_field_names(
    as_clinician: APIClient, registered: dict[str, Patient]
) -> None:
    response = as_clinician.post(
        LIST_URL,
        {"full_name": "Jon Smith", "date_of_birth": "1980-03-04", "phone": "+12025550101"},
        format="json",
    )

    assert response.status_code == 409
    (candidate,) = error_details(response)["candidates"]
    assert set(candidate) == {"id", "mrn", "score", "matched"}
    assert "Smith" not in response.content.decode()
    assert "5550101" not in response.content.decode()


def test_at_most_five_candidates_best_first(as_clinician: APIClient, organization: Organization):
    for number in range(7):
        PatientFactory.create(
            organization=organization,
            full_name=f"Sam Lee{'x' * number}",
            date_of_birth=date(1970, 1, 2),
            phone="+12025550199",
        )

    response = as_clinician.post(
        LIST_URL,
        {"full_name": "Sam Lee", "date_of_birth": "1970-01-02", "phone": "+12025550199"},
        format="json",
    )

    candidates = error_details(response)["candidates"]
    assert len(candidates) == 5
    assert [c["score"] for c in candidates] == sorted(
        (c["score"] for c in candidates), reverse=True
    )


def test_archived_patients_and_other_clinics_are_not_candidates(
    as_clinician: APIClient, organization: Organization, other_organization: Organization
) -> None:
    for clinic, active in ((organization, False), (other_organization, True)):
        PatientFactory.create(
            organization=clinic,
            full_name="John Doe",
            email="john@example.com",
            phone="+1234567890",
            is_active=active,
        )

    assert as_clinician.post(LIST_URL, SEED_BODY, format="json").status_code == 201


def test_duplicates_of_an_existing_patient_are_ranked(
    as_staff: APIClient, registered: dict[str, Patient]
) -> None:
    response = as_staff.get(detail_url(registered["maria"], "duplicates/"))

    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [registered["anna"].pk]
    assert response.json()[0]["matched"] == ["date_of_birth", "full_name"]
    event = AuditEvent.objects.get(action="patient.duplicates")
    assert event.patient_ids == [registered["maria"].pk, registered["anna"].pk]


@pytest.mark.parametrize("others", [1, 40])
def test_the_duplicate_check_costs_constant_queries(
    as_clinician: APIClient,
    organization: Organization,
    django_assert_num_queries: Any,
    others: int,
) -> None:
    PatientFactory.create_batch(
        others, organization=organization, full_name="John Doe", date_of_birth=date(1990, 5, 5)
    )
    # 1. SAVEPOINT of the write's transaction with its audit event (audit/mixins.py) and
    # 2. SAVEPOINT of the service's, both inside the test's; 3. the candidates: one query over
    # the indexes, whatever their number; 4-7. ROLLBACK TO and RELEASE of both savepoints (the
    # 409); 8. the audit INSERT, after the rollback. Nothing is written before the check decides.
    with django_assert_num_queries(8):
        response = as_clinician.post(
            LIST_URL, {"full_name": "John Doe", "date_of_birth": "1990-05-05"}, format="json"
        )

    assert response.status_code == 409


def test_the_admin_add_form_shows_candidates_and_creates_anyway(
    admin_client_for: Any, clinic_admin: User, organization: Organization
) -> None:
    existing = PatientFactory.create(
        organization=organization, full_name="John Doe", date_of_birth=date(1990, 5, 5)
    )
    client = admin_client_for(clinic_admin)
    form = {"full_name": "Jon Doe", "date_of_birth": "1990-05-05", "gender": "U", "mrn": ""}

    refused = client.post("/admin/patient/patient/add/", form)

    assert refused.status_code == 200
    assert existing.mrn in refused.content.decode()
    assert "Create anyway" in refused.content.decode()
    assert Patient.objects.filter(organization=organization).count() == 1
    refusal = AuditEvent.objects.filter(action="patient.create").latest("id")
    assert (refusal.status_code, refusal.patient_ids, refusal.source) == (
        400,
        [existing.pk],
        "admin",
    )

    created = client.post(
        "/admin/patient/patient/add/", {**form, "confirm_new": "on", "reason": "cousins"}
    )

    assert created.status_code == 302
    assert Patient.objects.filter(organization=organization).count() == 2
    event = AuditEvent.objects.filter(action="patient.create").latest("id")
    assert event.status_code == 201
    assert event.details["confirm_new"] is True
    assert event.details["reason"] == "cousins"
