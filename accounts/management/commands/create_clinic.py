"""Onboards a clinic: its organization and its first clinic admin (accounts/onboarding.py)."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.onboarding import OnboardingError, clinic_create, generate_password


class Command(BaseCommand):
    help = (
        "Create a clinic and its first clinic admin, who runs the clinic from /admin/. The "
        "admin's password is read from --admin-password-file, or generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The clinic's name, e.g. 'Northside Clinic'.")
        parser.add_argument("--slug", required=True, help="Short unique id, e.g. northside.")
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument(
            "--admin-password-file",
            type=Path,
            help="A file whose first line is the admin's password (e.g. a mounted secret).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password_file: Path | None = options["admin_password_file"]
        if password_file is not None:
            try:
                password = password_file.read_text().splitlines()[0]
            except (OSError, IndexError):
                raise CommandError(f"Cannot read a password from {password_file}.") from None
        else:
            password = generate_password()
        try:
            organization, admin = clinic_create(
                name=options["name"],
                slug=options["slug"],
                admin_username=options["admin_username"],
                admin_email=options["admin_email"],
                admin_password=password,
            )
        except OnboardingError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(f'Created clinic "{organization.name}" ({organization.slug}).')
        )
        self.stdout.write(f"Clinic admin: {admin.username} <{admin.email}>")
        if password_file is None:
            self.stdout.write(f"Password (shown once, store it now): {password}")
