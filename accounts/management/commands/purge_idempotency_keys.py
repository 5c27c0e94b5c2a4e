from typing import Any

from django.core.management.base import BaseCommand

from pms.idempotency import idempotency_purge_expired


class Command(BaseCommand):
    help = (
        "Delete Idempotency-Key records (and the responses they hold) claimed more than 24 "
        "hours ago. Run it periodically."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = idempotency_purge_expired()
        self.stdout.write(f"Deleted {count} expired idempotency key(s).")
