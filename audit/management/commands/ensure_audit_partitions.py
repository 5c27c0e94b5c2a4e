from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, router

from audit.models import AuditEvent
from audit.partitions import MONTHS_AHEAD, audit_partitions_ensure


class Command(BaseCommand):
    help = (
        "Create the monthly partitions of the audit table (PostgreSQL) for this month and the "
        "next ones, and move into them any event the DEFAULT partition caught. Celery beat runs "
        "the same hourly (task audit.ensure_partitions); this command is for manual runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=MONTHS_AHEAD,
            help=f"Months after this one to create (default {MONTHS_AHEAD}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        months_ahead = options["months_ahead"]
        if months_ahead < 0:
            raise CommandError("--months-ahead cannot be negative.")
        if connections[router.db_for_write(AuditEvent)].vendor != "postgresql":
            self.stdout.write("The audit table is partitioned on PostgreSQL only: nothing to do.")
            return
        created = audit_partitions_ensure(months_ahead=months_ahead)
        self.stdout.write(
            f"Created {', '.join(created)}." if created else "Every partition exists already."
        )
