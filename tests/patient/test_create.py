from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, User
from patient.filters import years_before
from patient.models import Gender, MRNSequence, Patient
from tests.factories import PatientFactory
from tests.patient.conftest import LIST_URL, error_code, error_details

SEED_BODY = {
    "full_name": "John Doe",
    "email": "john@example.com",
    "phone": "+1234567890",
    "age": 30,
    "gender": "M",
}


def test_the_seed_clients_create_body_registers_a_patient(
    as_clinician: APIClient, clinician: User, organization: Organization
) -> None:
    response = as_clinician.post(LIST_URL, SEED_BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    patient = Patient.objects.get(pk=body["id"])
    assert patient.organization == organization
    assert patient.created_by == clinician
    assert patient.full_name == "John Doe"
    assert patient.email == "john@example.com"
    assert patient.phone == "+1234567890"
    assert patient.gender == Gender.MALE
    assert patient.date_of_birth == date(timezone.localdate().year - 30, 1, 1)
    assert patient.birth_date_estimated is True
    assert patient.version == 1
    assert body["age"] == 30
    assert body["mrn"] == "MRN-000001"
    assert body["created_by"] == {"id": clinician.pk, "username": "carol"}
    assert response["ETag"] == '"1"'
    assert response["Location"] == f"/api/patient/patients/{patient.pk}/"


def test_a_staff_user_can_register_a_patient(as_staff: APIClient, staff_user: User) -> None:
    response = as_staff.post(LIST_URL, SEED_BODY, format="json")

    assert response.status_code == 201
    assert Patient.objects.get(pk=response.json()["id"]).created_by == staff_user


def test_a_form_encoded_body_is_accepted(as_clinician: APIClient) -> None:
    response = as_clinician.post(
        LIST_URL, {"full_name": "Form Body", "date_of_birth": "1980-02-03"}, format="multipart"
    )

    assert response.status_code == 201
    assert Patient.objects.get(pk=response.json()["id"]).date_of_birth == date(1980, 2, 3)


def test_a_date_of_birth_is_stored_as_given_and_not_estimated(as_clinician: APIClient) -> None:
    response = as_clinician.post(
        LIST_URL,
        {"full_name": "Ada Lovelace", "date_of_birth": "1990-12-10", "gender": "F"},
        format="json",
    )

    assert response.status_code == 201
    patient = Patient.objects.get(pk=response.json()["id"])
    assert patient.date_of_birth == date(1990, 12, 10)
    assert patient.birth_date_estimated is False
    assert patient.gender == Gender.FEMALE


def test_gender_defaults_to_unknown(as_clinician: APIClient) -> None:
    response = as_clinician.post(LIST_URL, {"full_name": "No Gender", "age": 4}, format="json")

    assert response.status_code == 201
    assert response.json()["gender"] == "U"


def test_mrns_are_generated_as_a_sequence_per_organization(
    client_for: Callable[[User], APIClient], clinician: User, foreign_clinician: User
) -> None:
    mine = client_for(clinician)
    theirs = client_for(foreign_clinician)

    first = mine.post(LIST_URL, {"full_name": "A One", "age": 1}, format="json").json()["mrn"]
    second = mine.post(LIST_URL, {"full_name": "A Two", "age": 2}, format="json").json()["mrn"]
    other = theirs.post(LIST_URL, {"full_name": "B One", "age": 3}, format="json").json()["mrn"]

    assert (first, second, other) == ("MRN-000001", "MRN-000002", "MRN-000001")
    assert MRNSequence.objects.get(organization=clinician.organization).last_value == 2


def test_a_generated_mrn_skips_numbers_already_chosen_by_hand(
    as_clinician: APIClient, organization: Organization
) -> None:
    PatientFactory.create(organization=organization, mrn="MRN-000001")

    response = as_clinician.post(LIST_URL, {"full_name": "Next One", "age": 9}, format="json")

    assert response.json()["mrn"] == "MRN-000002"


def test_a_given_mrn_is_normalized_and_kept(as_clinician: APIClient) -> None:
    response = as_clinician.post(
        LIST_URL, {"full_name": "Has Mrn", "age": 5, "mrn": " ab-123 "}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["mrn"] == "AB-123"


def test_a_duplicate_mrn_in_the_organization_is_a_validation_error(
    as_clinician: APIClient, organization: Organization
) -> None:
    PatientFactory.create(organization=organization, mrn="AB-1")

    response = as_clinician.post(
        LIST_URL, {"full_name": "Dup", "age": 5, "mrn": "ab-1"}, format="json"
    )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert error_details(response) == {"mrn": ["A patient with this MRN already exists."]}
    assert Patient.objects.filter(mrn="AB-1").count() == 1


def test_the_same_mrn_may_exist_in_another_organization(
    as_clinician: APIClient, other_organization: Organization
) -> None:
    PatientFactory.create(organization=other_organization, mrn="AB-1")

    response = as_clinician.post(
        LIST_URL, {"full_name": "Same Mrn", "age": 5, "mrn": "AB-1"}, format="json"
    )

    assert response.status_code == 201


def test_server_managed_fields_in_the_body_are_ignored(
    as_clinician: APIClient,
    clinician: User,
    organization: Organization,
    other_organization: Organization,
    foreign_clinician: User,
) -> None:
    response = as_clinician.post(
        LIST_URL,
        {
            **SEED_BODY,
            "organization": other_organization.pk,
            "created_by": foreign_clinician.pk,
            "version": 42,
            "is_active": False,
            "archived_at": "2020-01-01T00:00:00Z",
            "birth_date_estimated": False,
        },
        format="json",
    )

    assert response.status_code == 201
    patient = Patient.objects.get(pk=response.json()["id"])
    assert patient.organization == organization
    assert patient.created_by == clinician
    assert patient.version == 1
    assert patient.is_active is True
    assert patient.archived_at is None
    assert patient.birth_date_estimated is True


def test_a_user_without_organization_cannot_register_patients(db: None, client_for: Any) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "x-very-long-pass-1")

    response = client_for(root).post(LIST_URL, SEED_BODY, format="json")

    assert response.status_code == 403
    assert error_code(response) == "permission_denied"
    assert not Patient.objects.exists()


def test_an_anonymous_client_cannot_register_patients(db: None, api_client: APIClient) -> None:
    response = api_client.post(LIST_URL, SEED_BODY, format="json")

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"age": 3}, "full_name", "This field is required."),
        ({"full_name": "", "age": 3}, "full_name", "This field may not be blank."),
        ({"full_name": "   ", "age": 3}, "full_name", "This field may not be blank."),
        ({"full_name": "x" * 201, "age": 3}, "full_name", None),
        ({"full_name": "A", "age": 3, "email": "not-an-email"}, "email", None),
        ({"full_name": "A", "age": 3, "gender": "X"}, "gender", '"X" is not a valid choice.'),
        ({"full_name": "A", "age": -1}, "age", None),
        ({"full_name": "A", "age": 151}, "age", None),
        ({"full_name": "A", "age": "old"}, "age", "A valid integer is required."),
        (
            {"full_name": "A"},
            "date_of_birth",
            "Give date_of_birth or, when unknown, age.",
        ),
        (
            {"full_name": "A", "age": 3, "date_of_birth": "2020-01-01"},
            "age",
            "Give either date_of_birth or age, not both.",
        ),
        ({"full_name": "A", "date_of_birth": "2020-13-01"}, "date_of_birth", None),
        ({"full_name": "A", "age": 3, "mrn": "bad mrn!"}, "mrn", None),
        ({"full_name": "A", "age": 3, "address": "x" * 501}, "address", None),
    ],
)
def test_invalid_input_is_a_validation_error_naming_the_field(
    as_clinician: APIClient, body: dict[str, object], field: str, message: str | None
) -> None:
    response = as_clinician.post(LIST_URL, body, format="json")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    details = error_details(response)
    assert list(details) == [field]
    if message is not None:
        assert details[field] == [message]
    assert not Patient.objects.exists()


def test_a_future_birth_date_is_refused(as_clinician: APIClient) -> None:
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()

    response = as_clinician.post(
        LIST_URL, {"full_name": "Not Born", "date_of_birth": tomorrow}, format="json"
    )

    assert response.status_code == 400
    assert error_details(response) == {
        "date_of_birth": ["The date of birth cannot be in the future."]
    }


def test_a_birth_date_today_and_one_giving_age_150_are_accepted(as_clinician: APIClient) -> None:
    today = timezone.localdate()
    oldest = years_before(today, 151) + timedelta(days=1)

    def create(name: str, born: date) -> Any:
        body = {"full_name": name, "date_of_birth": born.isoformat()}
        return as_clinician.post(LIST_URL, body, format="json")

    newborn = create("New Born", today)
    eldest = create("Very Old", oldest)
    too_old = create("Too Old", oldest - timedelta(days=1))

    assert (newborn.status_code, newborn.json()["age"]) == (201, 0)
    assert (eldest.status_code, eldest.json()["age"]) == (201, 150)
    assert too_old.status_code == 400
    assert error_details(too_old) == {"date_of_birth": ["The date of birth gives an age over 150."]}


def test_names_are_stored_with_single_spaces(as_clinician: APIClient) -> None:
    response = as_clinician.post(
        LIST_URL, {"full_name": "  John \t  Doe ", "age": 1}, format="json"
    )

    assert response.json()["full_name"] == "John Doe"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+1234567890", "+1234567890"),
        ("+1 (202) 555-0143", "+12025550143"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+49 151 1234 5678", "+4915112345678"),
        ("", ""),
    ],
)
def test_phones_are_normalized_to_e164(as_clinician: APIClient, given: str, stored: str) -> None:
    response = as_clinician.post(
        LIST_URL, {"full_name": "Phone Owner", "age": 40, "phone": given}, format="json"
    )

    assert response.status_code == 201
    assert Patient.objects.get(pk=response.json()["id"]).phone == stored


@pytest.mark.parametrize(
    "phone",
    [
        "abc",
        "12",
        "+1 call me",
        "+1 800 FLOWERS",
        "+999 123 456",
        "+1234567890123456",
        "+12345",
        "(202) 555-0143",
    ],
)
def test_an_invalid_phone_is_a_validation_error(as_clinician: APIClient, phone: str) -> None:
    response = as_clinician.post(
        LIST_URL, {"full_name": "Bad Phone", "age": 40, "phone": phone}, format="json"
    )

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert list(error_details(response)) == ["phone"]


@override_settings(PATIENT_PHONE_DEFAULT_REGION="US")
def test_a_national_number_is_read_in_the_default_region(as_clinician: APIClient) -> None:
    response = as_clinician.post(
        LIST_URL, {"full_name": "Local Caller", "age": 40, "phone": "(202) 555-0143"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["phone"] == "+12025550143"


@override_settings(PATIENT_PHONE_STRICT=True)
def test_strict_phone_validation_refuses_numbers_that_are_not_assigned(
    as_clinician: APIClient,
) -> None:
    seed_phone = as_clinician.post(
        LIST_URL, {"full_name": "Strict", "age": 40, "phone": "+1234567890"}, format="json"
    )
    real_phone = as_clinician.post(
        LIST_URL, {"full_name": "Strict", "age": 40, "phone": "+12025550143"}, format="json"
    )

    assert seed_phone.status_code == 400
    assert list(error_details(seed_phone)) == ["phone"]
    assert real_phone.status_code == 201
