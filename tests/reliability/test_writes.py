"""The write detector the admin matrix relies on (tests/writes.py): it sees every write but the
audit trail's, and no read."""

import pytest
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
