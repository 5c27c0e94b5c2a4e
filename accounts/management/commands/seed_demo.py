"""Idempotent demo data for `make run`: one clinic, one user per role, demo patients.

The clinic is onboarded like any other (`create_clinic`); nobody is a superuser. Demo
credentials are printed on the console, so the command refuses to run with DEBUG off unless
told to with --force.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Organization, Role, User
from accounts.onboarding import clinic_create, user_sync_admin_access
from patient.demo import DEMO_PATIENT_COUNT, seed_demo_patients

DEMO_ORGANIZATION = {"slug": "demo-clinic", "name": "Demo Clinic"}
DEMO_ADMIN = "admin"
# Demo-only credentials, printed on the console; never use this command on a real database.
DEMO_USERS = [
    # username, role, password
    (DEMO_ADMIN, Role.ADMIN, "admin-demo-2024!"),
    ("clinician", Role.CLINICIAN, "clinician-demo-2024!"),
    ("staff", Role.STAFF, "staff-demo-2024!"),
]


def _email(username: str) -> str:
    return f"{username}@demo-clinic.example"


class Command(BaseCommand):
    help = "Create (or reset) the demo clinic, its users and demo patients."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users with published passwords: it runs with DEBUG on, or "
                "with --force."
            )
        organization = Organization.objects.filter(slug=DEMO_ORGANIZATION["slug"]).first()
        if organization is None:
            organization, _ = clinic_create(
                name=DEMO_ORGANIZATION["name"],
                slug=DEMO_ORGANIZATION["slug"],
                admin_username=DEMO_ADMIN,
                admin_email=_email(DEMO_ADMIN),
                admin_password=DEMO_USERS[0][2],
            )
        for username, role, password in DEMO_USERS:
            user, _ = User.objects.update_or_create(
                username=username,
                defaults={
                    "email": _email(username),
                    "email_verified": True,
                    "role": role,
                    "organization": organization,
                    "is_superuser": False,
                    "is_active": True,
                },
            )
            user.set_password(password)
            user.save(update_fields=["password"])
            user_sync_admin_access(user=user)
        created = seed_demo_patients(actor=User.objects.get(username=DEMO_ADMIN))
        self.stdout.write(self.style.SUCCESS(f"Demo organization: {organization.name}"))
        self.stdout.write(f"Demo patients: {created} created, {DEMO_PATIENT_COUNT} in total.")
        self.stdout.write("Demo logins (username / password / role):")
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {password:<22} {role}")
        self.stdout.write("The admin runs the clinic at /admin/ (a clinic admin, not a superuser).")
