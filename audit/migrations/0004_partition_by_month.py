"""On PostgreSQL, the audit table becomes range-partitioned by month of `occurred_at` (UTC):
old months can then be detached and archived whole, and queries by date read only their months
(audit/partitions.py, docs/operations.md). SQLite keeps one table: nothing happens there.

The table is rebuilt under an exclusive lock in one transaction: the partitioned table is
created beside the old one, with a partition for every month that has rows, this month and the
next ones, and a DEFAULT partition; the rows are copied (requests wait meanwhile, some 15 s per
million rows); the old table is dropped. Then the primary key, the indexes and the append-only
trigger are defined on the parent, which gives each partition (present and future) its own.

A primary key of a partitioned table must contain the partition key, so it is (id, occurred_at).
Django still treats `id` alone as the primary key; it stays unique because only the sequence
gives ids (nothing in the project writes one, and UPDATE is refused). PostgreSQL 15 has no
identity column on a partitioned table, so `id` defaults to a plain sequence, owned by the column
(as a serial's is, so Django's sequence resets find it), that continues from the old identity
sequence: no id is ever given twice.
"""

from django.db import migrations
from django.utils import timezone

from audit.partitions import (
    MONTHS_AHEAD,
    PARENT,
    add_months,
    create_default_partition,
    create_month_partitions,
    month_of,
)

OLD = f"{PARENT}_unpartitioned"
SEQUENCE = f"{PARENT}_id_seq"

# As in migration 0002; the trigger function itself is kept from there.
GIN_INDEX = f"CREATE INDEX audit_patient_ids_gin ON {PARENT} USING gin (patient_ids jsonb_path_ops)"
APPEND_ONLY_TRIGGER = (
    f"CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON {PARENT} "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
)


def _set_aside(cursor, name):
    """Renames the current table and its id sequence out of the way; returns the sequence's
    state (last value, is_called) for the new one to continue from."""
    cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {name}")
    cursor.execute(f"ALTER SEQUENCE {SEQUENCE} RENAME TO {name}_id_seq")
    cursor.execute(f"SELECT last_value, is_called FROM {name}_id_seq")  # noqa: S608
    return cursor.fetchone()


def _move_rows_and_guard(apps, schema_editor, cursor, old, primary_key):
    cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {old}")  # noqa: S608
    cursor.execute(f"DROP TABLE {old}")
    cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY ({primary_key})")
    model = apps.get_model("audit", "AuditEvent")
    for index in model._meta.indexes:
        schema_editor.add_index(model, index)
    cursor.execute(GIN_INDEX)
    cursor.execute(APPEND_ONLY_TRIGGER)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        last_value, is_called = _set_aside(cursor, OLD)
        cursor.execute(f"CREATE SEQUENCE {SEQUENCE} AS bigint")
        cursor.execute("SELECT setval(%s, %s, %s)", [SEQUENCE, last_value, is_called])
        cursor.execute(
            f"CREATE TABLE {PARENT} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
            "PARTITION BY RANGE (occurred_at)"
        )
        cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')")
        cursor.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {PARENT}.id")

        cursor.execute(
            "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "  # noqa: S608
            f"FROM {OLD}"
        )
        months = [month for (month,) in cursor.fetchall()]
        this_month = month_of(timezone.now().date())
        months += [add_months(this_month, count) for count in range(MONTHS_AHEAD + 1)]
        create_month_partitions(cursor, months)
        create_default_partition(cursor)
        _move_rows_and_guard(apps, schema_editor, cursor, OLD, "id, occurred_at")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{PARENT}_partitioned"
    with schema_editor.connection.cursor() as cursor:
        last_value, is_called = _set_aside(cursor, old)
        # The plain table takes these names; dropping the parent's drops every partition's copy.
        cursor.execute(f"ALTER TABLE {old} DROP CONSTRAINT {PARENT}_pkey")
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND schemaname = "
            "current_schema()",
            [old],
        )
        for (index,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{index}"')
        cursor.execute(f"CREATE TABLE {PARENT} (LIKE {old} INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)",
            [PARENT, last_value, is_called],
        )
        _move_rows_and_guard(apps, schema_editor, cursor, old, "id")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_source")]

    operations = [migrations.RunPython(partition, unpartition)]
