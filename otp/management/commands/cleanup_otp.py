from typing import Any

from django.core.management.base import BaseCommand

from otp.services import otp_cleanup


class Command(BaseCommand):
    help = (
        "Delete one-time codes that are expired, used or out of tries, per-address request "
        "counters that no longer limit anything, and code deliveries too old to send. Celery "
        "beat runs the same cleanup hourly (task otp.cleanup); this command is for manual runs "
        "and is safe at any time."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = otp_cleanup()
        self.stdout.write(
            f"Deleted {result.codes} one-time codes, {result.address_counters} address counters "
            f"and {result.deliveries} code deliveries."
        )
