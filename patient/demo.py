"""Demo patients for `seed_demo` (fictional people: example.com emails, 555-01xx phones)."""

from datetime import date, timedelta

from django.db import transaction

from accounts.models import User
from patient.models import Gender, Patient
from patient.services import patient_create

_FIRST_NAMES = [
    ("John", Gender.MALE),
    ("Jane", Gender.FEMALE),
    ("Maria", Gender.FEMALE),
    ("Ahmed", Gender.MALE),
    ("Wei", Gender.MALE),
    ("Priya", Gender.FEMALE),
    ("Carlos", Gender.MALE),
    ("Aisha", Gender.FEMALE),
    ("Sam", Gender.OTHER),
    ("Olga", Gender.FEMALE),
]
_LAST_NAMES = ["Doe", "Garcia", "Okafor", "Nguyen", "Smith"]
_STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St"]
DEMO_PATIENT_COUNT = len(_FIRST_NAMES) * len(_LAST_NAMES)


def demo_mrn(index: int) -> str:
    return f"DEMO-{index + 1:04d}"


@transaction.atomic
def seed_demo_patients(*, actor: User) -> int:
    """Creates the demo patients missing from the actor's organization; returns how many."""
    existing = set(
        Patient.objects.filter(
            organization=actor.organization, mrn__startswith="DEMO-"
        ).values_list("mrn", flat=True)
    )
    created = 0
    for index in range(DEMO_PATIENT_COUNT):
        if demo_mrn(index) in existing:
            continue
        first, gender = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        last = _LAST_NAMES[index // len(_FIRST_NAMES)]
        data: dict[str, object] = {
            "mrn": demo_mrn(index),
            "full_name": f"{first} {last}",
            "email": f"{first}.{last}{index}@example.com".lower(),
            "phone": f"+1202555{100 + index:04d}",
            "gender": gender,
            "address": f"{100 + index * 7} {_STREETS[index % len(_STREETS)]}, Springfield",
        }
        if index % 7 == 0:
            # Some arrive without a known birth date: an age, stored as an estimate.
            data["age"] = 20 + index
        else:
            data["date_of_birth"] = date(1940, 1, 1) + timedelta(days=index * 523)
        patient_create(actor=actor, data=data)
        created += 1
    return created
