"""The audit table's monthly partitions (PostgreSQL): where events land, the append-only rule
on every partition, the beat task that creates them ahead, and the plans of the auditor API."""

import re
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError
from django.utils import timezone

from accounts.models import Organization, User
from audit.filters import AuditEventFilter
from audit.models import AuditEvent
from audit.partitions import (
    DEFAULT_PARTITION,
    PARENT,
    add_months,
    audit_partitions_ensure,
    month_of,
    partition_name,
)
from audit.services import audit_record
from audit.tasks import ensure_partitions
from tests.factories import AuditEventFactory

postgres = pytest.mark.usefixtures("postgres_only")


def event_at(moment: datetime, organization: Organization | None = None, **fields: Any) -> int:
    return int(AuditEventFactory.create(occurred_at=moment, organization=organization, **fields).pk)


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {PARENT} WHERE id = %s", [event_id])  # noqa: S608
        return str(cursor.fetchone()[0])


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            [PARENT],
        )
        return {name for (name,) in cursor.fetchall()}


def relation_kind(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [name])
        return str(cursor.fetchone()[0])


def this_month() -> date:
    return month_of(timezone.now().date())


@postgres
def test_a_recorded_event_lands_in_the_partition_of_this_month(rf, clinician):
    request = rf.get("/api/patient/patients/")
    request.user = clinician

    audit_record(request=request, action="patient.list", resource_type="patient", status_code=200)

    assert partition_of(AuditEvent.objects.get().pk) == partition_name(this_month())


@postgres
@pytest.mark.django_db
def test_events_land_in_the_partition_of_their_utc_month():
    assert audit_partitions_ensure(today=date(2031, 1, 15)) == [
        "audit_auditevent_y2031m01",
        "audit_auditevent_y2031m02",
        "audit_auditevent_y2031m03",
    ]

    last_instant_of_january = event_at(datetime(2031, 1, 31, 23, 59, 59, 999999, tzinfo=UTC))
    first_instant_of_february = event_at(datetime(2031, 2, 1, tzinfo=UTC))
    february_in_paris_january_in_utc = event_at(datetime.fromisoformat("2031-02-01T00:30+01:00"))

    assert partition_of(last_instant_of_january) == "audit_auditevent_y2031m01"
    assert partition_of(first_instant_of_february) == "audit_auditevent_y2031m02"
    assert partition_of(february_in_paris_january_in_utc) == "audit_auditevent_y2031m01"


@postgres
@pytest.mark.django_db
def test_an_event_of_a_month_without_partition_is_kept_by_the_default_partition():
    assert partition_of(event_at(datetime(2099, 6, 1, tzinfo=UTC))) == DEFAULT_PARTITION


@postgres
@pytest.mark.django_db
@pytest.mark.parametrize("which", ["this month", "created later", "default"])
def test_update_and_delete_are_refused_on_a_partition_itself(which):
    audit_partitions_ensure(today=date(2031, 1, 15))
    moment, partition = {
        "this month": (timezone.now(), partition_name(this_month())),
        "created later": (datetime(2031, 1, 2, tzinfo=UTC), "audit_auditevent_y2031m01"),
        "default": (datetime(2099, 6, 1, tzinfo=UTC), DEFAULT_PARTITION),
    }[which]
    event_id = event_at(moment)
    assert partition_of(event_id) == partition

    for sql in (
        f"UPDATE {partition} SET action = 'tampered'",  # noqa: S608
        f"DELETE FROM {partition}",  # noqa: S608
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert AuditEvent.objects.get(pk=event_id).action == "patient.list"


@postgres
@pytest.mark.django_db
def test_the_beat_task_creates_next_months_partition_once():
    next_month = partition_name(add_months(this_month(), 1))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {next_month}")  # as if beat had not run since the migration
    assert next_month not in partitions()

    assert ensure_partitions.delay().get() == [next_month]
    assert ensure_partitions.delay().get() == []

    assert next_month in partitions()
    next_month_event = event_at(
        datetime.combine(add_months(this_month(), 1), datetime.min.time(), UTC)
    )
    assert partition_of(next_month_event) == next_month


@postgres
@pytest.mark.django_db
def test_events_the_default_partition_caught_move_to_their_month_partition():
    stray = event_at(datetime(2040, 5, 20, tzinfo=UTC))
    far_future = event_at(datetime(2099, 6, 1, tzinfo=UTC))
    assert partition_of(stray) == DEFAULT_PARTITION

    created = audit_partitions_ensure(today=date(2040, 6, 3))

    assert created == [
        "audit_auditevent_y2040m05",
        "audit_auditevent_y2040m06",
        "audit_auditevent_y2040m07",
        "audit_auditevent_y2040m08",
        "audit_auditevent_y2099m06",
    ]
    assert partition_of(stray) == "audit_auditevent_y2040m05"
    assert partition_of(far_future) == "audit_auditevent_y2099m06"
    assert DEFAULT_PARTITION in partitions()
    assert partition_of(event_at(datetime(2199, 1, 1, tzinfo=UTC))) == DEFAULT_PARTITION
    assert audit_partitions_ensure(today=date(2040, 6, 3)) == ["audit_auditevent_y2199m01"]


@postgres
@pytest.mark.django_db
def test_the_command_creates_what_is_missing_and_then_nothing():
    next_month = partition_name(add_months(this_month(), 1))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {next_month}")
    first, second = StringIO(), StringIO()

    call_command("ensure_audit_partitions", stdout=first)
    call_command("ensure_audit_partitions", stdout=second)

    assert first.getvalue() == f"Created {next_month}.\n"
    assert second.getvalue() == "Every partition exists already.\n"


@pytest.mark.django_db
def test_on_sqlite_there_is_nothing_to_partition():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    output = StringIO()

    assert ensure_partitions.delay().get() == []
    call_command("ensure_audit_partitions", stdout=output)
    assert output.getvalue() == (
        "The audit table is partitioned on PostgreSQL only: nothing to do.\n"
    )


@postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_existing_events_into_their_months_and_back_keeping_their_ids():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("audit")
    executor.migrate([("audit", "0003_source")])
    try:
        assert relation_kind(PARENT) == "r"
        old_ids = [event_at(datetime(2025, 3, 10, tzinfo=UTC)), event_at(timezone.now())]

        MigrationExecutor(connection).migrate(latest)

        assert relation_kind(PARENT) == "p"
        assert partition_of(old_ids[0]) == "audit_auditevent_y2025m03"
        assert partition_of(old_ids[1]) == partition_name(this_month())
        assert {
            partition_name(add_months(this_month(), 1)),
            partition_name(add_months(this_month(), 2)),
            DEFAULT_PARTITION,
        } <= partitions()
        new_id = event_at(timezone.now())
        assert new_id > max(old_ids)

        MigrationExecutor(connection).migrate([("audit", "0003_source")])

        assert relation_kind(PARENT) == "r"
        assert sorted(AuditEvent.objects.values_list("id", flat=True)) == [*old_ids, new_id]
        assert event_at(timezone.now()) > new_id
    finally:
        MigrationExecutor(connection).migrate(latest)
    assert relation_kind(PARENT) == "p"


def fill_month(own: Organization, other: Organization, *, own_every: int) -> None:
    """An event an hour for 20 days of this month, one in `own_every` of the auditor's clinic
    and the rest of another, each of its own patient, plus one of patient 7; the planner
    steered off sequential scans, which a table this small would get (as in
    tests/patient/test_indexes.py)."""
    start = datetime.combine(this_month(), datetime.min.time(), UTC)
    for hour in range(24 * 20):
        clinic = own if hour % own_every == 0 else other
        event_at(start + timedelta(hours=hour), clinic, patient_ids=[1000 + hour])
    event_at(start, own, patient_ids=[7])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {PARENT}")
        cursor.execute("SET LOCAL enable_seqscan = off")


@pytest.fixture
def planner(
    postgres_only: None, organization: Organization, other_organization: Organization
) -> None:
    """Mostly another clinic's events: the auditor's clinic alone narrows the search."""
    fill_month(organization, other_organization, own_every=20)


@pytest.fixture
def planner_one_clinic(
    postgres_only: None, organization: Organization, other_organization: Organization
) -> None:
    """Only the auditor's clinic's events: the patient alone narrows the search. With a few
    clinic rows to filter, the organization's index could win instead, depending on how many
    pages earlier tests' rolled-back events left in the partition (it did in two fresh-clone
    runs of .ci/run)."""
    fill_month(organization, other_organization, own_every=1)


def auditor_query(org_admin: User, **params: str) -> str:
    """The plan of the auditor API's query for `params` in the dates of this month."""
    start = datetime.combine(this_month(), datetime.min.time(), UTC)
    end = datetime.combine(add_months(this_month(), 1), datetime.min.time(), UTC)
    filterset = AuditEventFilter(
        {"occurred_after": start.isoformat(), "occurred_before": end.isoformat(), **params},
        queryset=AuditEvent.objects.visible_to(org_admin),
    )
    assert filterset.is_valid(), filterset.errors
    return str(filterset.qs.explain())


@pytest.mark.usefixtures("planner")
def test_a_query_by_organization_and_dates_reads_one_partition_through_an_index(org_admin):
    explained = auditor_query(org_admin)

    month = partition_name(this_month())
    # One of the indexes that lead with the organization and hold the time serves it.
    assert re.search(rf"Index Scan (on|using) {month}_organization_id_\w+", explained)
    # The scope is sent as a bigint (pms/scoping.py).
    scope = f"'{org_admin.organization_id}'::bigint"
    assert f"Index Cond: ((organization_id = {scope}) AND (occurred_at >=" in explained
    assert not any(other in explained for other in partitions() - {month})


@pytest.mark.usefixtures("planner_one_clinic")
def test_a_query_by_patient_and_dates_reads_one_partition_through_the_gin_index(org_admin):
    explained = auditor_query(org_admin, patient="7")

    month = partition_name(this_month())
    assert f"Bitmap Index Scan on {month}_patient_ids_idx" in explained
    assert not any(other in explained for other in partitions() - {month})
