"""The write detector the admin matrix relies on (tests/writes.py): it sees every write but the
audit trail's, and no read."""

import pytest
from django.db import connection
from django.db.models import F

from accounts.models import Organization
from patient.models import Patient
from tests.factories import AuditEventFactory, PatientFactory
from tests.writes import writes_recorded

pytestmark = pytest.mark.django_db


def test_every_write_but_the_audit_trail_is_seen_and_no_read(organization: Organization) -> None:
    patient = PatientFactory.create(organization=organization)
    with writes_recorded() as writes:
        list(Patient.objects.all())
        AuditEventFactory.create(organization=organization)
        assert writes == []
        # An UPDATE to the row's own value changes nothing, and is still a write.
        Patient.objects.filter(pk=patient.pk).update(full_name=F("full_name"))
        Patient.objects.filter(pk=patient.pk).exists()
    assert len(writes) == 1
    assert writes[0].startswith('UPDATE "patient_patient"')


def test_a_write_inside_a_with_query_is_seen(postgres_only: None, organization: Organization):
    """PostgreSQL's data-modifying CTE (SQLite has none) begins with WITH, not with the write."""
    patient = PatientFactory.create(organization=organization)
    with writes_recorded() as writes, connection.cursor() as cursor:
        cursor.execute(
            "WITH recent AS (SELECT id FROM patient_patient) SELECT count(*) FROM recent"
        )
        cursor.execute(
            "WITH changed AS (UPDATE patient_patient SET full_name = full_name"
            " WHERE id = %s RETURNING id) SELECT count(*) FROM changed",
            [patient.pk],
        )
    assert len(writes) == 1
    assert writes[0].startswith("WITH changed AS (UPDATE")
