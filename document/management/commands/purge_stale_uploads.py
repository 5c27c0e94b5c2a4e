from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from document.services import document_purge_stale


class Command(BaseCommand):
    help = (
        "Delete pending (never confirmed) documents older than a given age, with any object "
        "they left in storage. Celery beat runs the same purge hourly (task "
        "document.purge_stale_uploads); this command is for manual runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-hours",
            type=int,
            default=None,
            help="Age in hours (default: DOCUMENT_PENDING_MAX_AGE_HOURS).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["older_than_hours"]
        if hours is None:
            hours = settings.DOCUMENT_PENDING_MAX_AGE_HOURS
        if hours < 1:
            raise CommandError("--older-than-hours must be at least 1.")
        count = document_purge_stale(older_than=timedelta(hours=hours), dry_run=options["dry_run"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(f"{verb} {count} pending document(s) older than {hours} hour(s).")
