from audit.partitions import MONTHS_AHEAD, audit_partitions_ensure
from pms.celery import app


@app.task(name="audit.ensure_partitions")
def ensure_partitions(months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Beat's hourly `ensure-audit-partitions`: the audit table's partitions of this month and
    the next ones; idempotent (a second run creates nothing). Returns the names created."""
    return audit_partitions_ensure(months_ahead=months_ahead)
