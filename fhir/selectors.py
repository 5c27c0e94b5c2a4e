"""Reads the FHIR surface needs beyond the patient and document selectors."""

from typing import Any

from django.utils import timezone
from rest_framework.exceptions import NotFound

from fhir.http import Gone
from fhir.models import ExportJob, ExportStatus
from patient.models import Patient
from patient.selectors import patient_get


def fhir_patient_get(*, user: Any, pk: str) -> Patient:
    """`patient_get`, except that the clinic's own archived patient is 410 Gone (FHIR's answer
    for a deleted resource) rather than 404. Another clinic's patient stays a 404."""
    try:
        return patient_get(user=user, pk=pk)
    except NotFound:
        if (
            pk.isdigit()
            and Patient.objects.visible_to(user).filter(pk=pk, is_active=False).exists()
        ):
            raise Gone("The patient has been archived.") from None
        raise


def export_job_get(*, user: Any, key: Any) -> ExportJob:
    """A job of the caller's own: anyone else's, a cancelled or an expired one is not found."""
    job = (
        ExportJob.objects.visible_to(user)
        .filter(key=key, requested_by=user)
        .exclude(status__in=[ExportStatus.CANCELLED, ExportStatus.EXPIRED])
        .first()
    )
    if job is None or (job.expires_at is not None and job.expires_at <= timezone.now()):
        raise NotFound("Export not found.")
    return job
