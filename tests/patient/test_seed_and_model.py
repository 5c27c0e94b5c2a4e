from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Organization
from patient.demo import DEMO_PATIENT_COUNT
from patient.models import Patient, age_on
from patient.validators import normalize_phone


def test_seed_demo_adds_about_50_patients_once(db: None) -> None:
    call_command("seed_demo", "--force", stdout=StringIO())
    first = set(Patient.objects.values_list("pk", "version"))
    output = StringIO()
    call_command("seed_demo", "--force", stdout=output)

    demo = Organization.objects.get(slug="demo-clinic")
    patients = Patient.objects.filter(organization=demo)
    assert DEMO_PATIENT_COUNT == 50
    assert patients.count() == 50
    assert set(Patient.objects.values_list("pk", "version")) == first
    assert patients.filter(full_name="John Doe", gender="M").exists()
    assert patients.filter(birth_date_estimated=True).exists()
    assert all(
        normalize_phone(phone) == phone for phone in patients.values_list("phone", flat=True)
    )
    assert patients.values("mrn").distinct().count() == 50
    assert "Demo patients: 0 created, 50 in total." in output.getvalue()


def test_every_save_bumps_the_version(patient: Patient) -> None:
    patient.notes = "one"
    patient.save()
    patient.save(update_fields=["notes"])

    patient.refresh_from_db()
    assert patient.version == 3
    assert patient.history.count() == 3


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2000, 6, 15), date(2026, 6, 14), 25),
        (date(2000, 6, 15), date(2026, 6, 15), 26),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(2026, 1, 1), date(2026, 1, 1), 0),
    ],
)
def test_age_counts_completed_years(born: date, today: date, age: int) -> None:
    assert age_on(born, today) == age


def test_a_patient_prints_without_personal_data(patient: Patient) -> None:
    assert str(patient) == f"Patient {patient.mrn}"
    assert "John" not in str(patient)
