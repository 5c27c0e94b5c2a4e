"""The compare-and-set of If-Match and the MRN sequence hold under concurrent requests."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from django.db import connection, transaction

from accounts.models import Organization, User
from patient import services
from patient.models import MRNSequence, Patient
from pms.exceptions import PreconditionFailed
from tests.factories import PatientFactory

RACERS = [
    "Ada Lovelace",
    "Bo Chen",
    "Cyd Okafor",
    "Dee Patel",
    "Eli Novak",
    "Fay Haddad",
    "Gus Moreau",
    "Hal Ivanov",
]


def test_the_version_check_is_made_against_the_database_not_the_loaded_copy(
    patient: Patient, clinician: User
) -> None:
    stale = Patient.objects.get(pk=patient.pk)
    services.patient_update(actor=clinician, patient=patient, data={"notes": "first"})

    # The stale copy still says version 1: only the database knows it is 2 now.
    with pytest.raises(PreconditionFailed):
        services.patient_update(
            actor=clinician, patient=stale, data={"notes": "lost"}, expected_versions={1}
        )

    patient.refresh_from_db()
    assert (patient.notes, patient.version) == ("first", 2)


def test_an_update_without_if_match_starts_from_the_latest_state(
    patient: Patient, clinician: User
) -> None:
    stale = Patient.objects.get(pk=patient.pk)
    services.patient_update(actor=clinician, patient=patient, data={"notes": "kept"})

    services.patient_update(actor=clinician, patient=stale, data={"address": "2 Lane"})

    patient.refresh_from_db()
    assert (patient.notes, patient.address, patient.version) == ("kept", "2 Lane", 3)
    assert patient.history.first().notes == "kept"


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_two_patches_with_the_same_if_match_cannot_both_win(
    organization: Organization, clinician: User
) -> None:
    patient = PatientFactory.create(organization=organization)
    claimed, release = threading.Event(), threading.Event()
    outcomes: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.patient_update(
                    actor=clinician, patient=patient, data={"notes": "A"}, expected_versions={1}
                )
                claimed.set()
                release.wait(5)  # hold the row lock while the second request arrives
            outcomes["first"] = "updated"
        finally:
            connection.close()

    def second() -> None:
        claimed.wait(5)
        try:
            services.patient_update(
                actor=clinician, patient=patient, data={"notes": "B"}, expected_versions={1}
            )
            outcomes["second"] = "updated"
        except PreconditionFailed:
            outcomes["second"] = "precondition_failed"
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # let the second request block on the lock
    release.set()
    for thread in threads:
        thread.join(10)

    assert outcomes == {"first": "updated", "second": "precondition_failed"}
    patient.refresh_from_db()
    assert (patient.notes, patient.version) == ("A", 2)
    assert patient.history.count() == 2


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_get_distinct_consecutive_mrns(
    organization: Organization, clinician: User
) -> None:
    start = threading.Barrier(8)

    def create(number: int) -> str:
        try:
            start.wait(5)
            # Eight different people: no registration is a likely duplicate of another.
            data = {"full_name": RACERS[number], "date_of_birth": date(1940 + 7 * number, 3, 9)}
            patient = services.patient_create(actor=clinician, data=data)
            return patient.mrn
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        mrns = list(pool.map(create, range(8)))

    assert sorted(mrns) == [f"MRN-{n:06d}" for n in range(1, 9)]
    assert MRNSequence.objects.get(organization=organization).last_value == 8
