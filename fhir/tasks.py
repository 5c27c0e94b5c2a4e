from fhir.export import export_expire, export_run
from pms.celery import app

# An export of a million patients runs for minutes, not the default two: its own limits. A
# second delivery of the same job (the broker's visibility timeout passing while it runs) finds
# the job started and returns at once.
EXPORT_SOFT_TIME_LIMIT = 4 * 3600
EXPORT_TIME_LIMIT = EXPORT_SOFT_TIME_LIMIT + 300


@app.task(name="fhir.export", soft_time_limit=EXPORT_SOFT_TIME_LIMIT, time_limit=EXPORT_TIME_LIMIT)
def export(job_id: int) -> None:
    """Writes a Bulk Data export's files; idempotent (a job runs once)."""
    export_run(job_id=job_id)


@app.task(name="fhir.expire_exports")
def expire_exports() -> int:
    """Beat's hourly deletion of expired exports' files; idempotent."""
    return export_expire()
