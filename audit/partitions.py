"""Monthly partitions of the audit table on PostgreSQL (SQLite keeps one table).

Migration 0004 makes `audit_auditevent` a table range-partitioned on `occurred_at`, one
partition per calendar month in UTC, named `audit_auditevent_yYYYYmMM`, plus a DEFAULT
partition. The indexes and the append-only trigger are defined on the parent, so PostgreSQL
gives every partition its own copy of them.

Beat runs `audit_partitions_ensure` hourly (task `audit.ensure_partitions`) so that the coming
months exist long before their first row. The DEFAULT partition is the safety net for a beat
that stopped: without it, the INSERT of an event whose month has no partition would fail, and
the audit trail, which fails closed, would turn every request on patient data into a 503. The
next run moves whatever the DEFAULT partition caught into the month partitions it belongs to,
and logs a warning, because until then those rows sit in a partition that cannot be detached
by month (docs/operations.md).
"""

import logging
from collections.abc import Iterable
from datetime import date

from django.db import connections, router, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from audit.models import AuditEvent

logger = logging.getLogger("pms.audit")

PARENT = "audit_auditevent"
DEFAULT_PARTITION = f"{PARENT}_default"
_REHOMING = f"{PARENT}_rehoming"
# Creating a partition locks the parent table: rather than queue every request's audit INSERT
# behind a DDL that waits for a long audit read, give up and let the task retry.
_LOCK_TIMEOUT = "5s"
# Two months ahead: beat may be down for weeks before any event lands in the DEFAULT partition.
MONTHS_AHEAD = 2


def month_of(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT}_y{month.year:04d}m{month.month:02d}"


def create_default_partition(cursor: CursorWrapper) -> None:
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION} PARTITION OF {PARENT} DEFAULT")


def create_month_partitions(cursor: CursorWrapper, months: Iterable[date]) -> list[str]:
    """Creates the partitions of `months` (first days of months) that do not exist yet, and
    returns their names. The DEFAULT partition must hold no row of those months."""
    existing = _partitions(cursor)
    created = []
    for month in sorted({month_of(month) for month in months}):
        name = partition_name(month)
        if name in existing:
            continue
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} "
            f"FOR VALUES FROM ('{month.isoformat()} 00:00+00') "
            f"TO ('{add_months(month, 1).isoformat()} 00:00+00')"
        )
        created.append(name)
    return created


def _partitions(cursor: CursorWrapper) -> set[str]:
    cursor.execute(
        "SELECT child.relname FROM pg_inherits JOIN pg_class AS child ON child.oid = inhrelid "
        "WHERE inhparent = %s::regclass",
        [PARENT],
    )
    return {name for (name,) in cursor.fetchall()}


def _months_in_default(cursor: CursorWrapper) -> list[date]:
    cursor.execute(
        "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "  # noqa: S608
        f"FROM {DEFAULT_PARTITION}"
    )
    return [month for (month,) in cursor.fetchall()]


def audit_partitions_ensure(
    *, months_ahead: int = MONTHS_AHEAD, today: date | None = None
) -> list[str]:
    """Creates the partitions of this month (UTC), of the `months_ahead` next ones, and of
    every month whose rows the DEFAULT partition caught, moving those rows there. Idempotent:
    returns the names of the partitions it created, none on a second run."""
    connection = connections[router.db_for_write(AuditEvent)]
    if connection.vendor != "postgresql":
        return []
    this_month = month_of(today or timezone.now().date())
    months = [add_months(this_month, count) for count in range(months_ahead + 1)]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
        # One run at a time (beat and a manual command, say): a second run then finds the
        # partitions made, instead of racing to create the same ones.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [PARENT])
        caught = _months_in_default(cursor)
        if not caught:
            return create_month_partitions(cursor, months)
        # A month partition cannot be created while the DEFAULT partition holds rows of that
        # month, and those rows cannot be deleted (the trigger refuses it). So the DEFAULT
        # partition is detached and set aside, the partitions created, an empty DEFAULT put
        # back, and the rows set aside inserted again through the parent, which routes each
        # to its month; dropping the set-aside table deletes no row one by one.
        logger.warning(
            "the audit DEFAULT partition holds events of months without a partition (%s); "
            "moving them to their month partitions",
            ", ".join(f"{month:%Y-%m}" for month in caught),
        )
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {DEFAULT_PARTITION}")
        cursor.execute(f"ALTER TABLE {DEFAULT_PARTITION} RENAME TO {_REHOMING}")
        created = create_month_partitions(cursor, [*months, *caught])
        create_default_partition(cursor)
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {_REHOMING}")  # noqa: S608
        cursor.execute(f"DROP TABLE {_REHOMING}")
        return created
