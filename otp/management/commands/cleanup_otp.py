from typing import Any

from django.core.management.base import BaseCommand

from otp.services import otp_cleanup


class Command(BaseCommand):
    help = (
        "Delete one-time codes that are expired, used or out of tries, and per-address request "
        "counters that no longer limit anything. Safe to run at any time (e.g. hourly from cron)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        codes, limits = otp_cleanup()
        self.stdout.write(f"Deleted {codes} one-time codes and {limits} address counters.")
