"""Idempotent demo data for `make run`: one clinic, one user per role, demo patients."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Organization, Role, User
from patient.demo import DEMO_PATIENT_COUNT, seed_demo_patients

DEMO_ORGANIZATION = {"slug": "demo-clinic", "name": "Demo Clinic"}
# Demo-only credentials, printed on the console; never use this command on a real database.
DEMO_USERS = [
    # username, role, password, is_staff (may use the Django admin)
    ("admin", Role.ADMIN, "admin-demo-2024!", True),
    ("clinician", Role.CLINICIAN, "clinician-demo-2024!", False),
    ("staff", Role.STAFF, "staff-demo-2024!", False),
]


class Command(BaseCommand):
    help = "Create (or reset) the demo organization, its users and demo patients."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        organization, _ = Organization.objects.update_or_create(
            slug=DEMO_ORGANIZATION["slug"], defaults={"name": DEMO_ORGANIZATION["name"]}
        )
        for username, role, password, is_staff in DEMO_USERS:
            user, _ = User.objects.update_or_create(
                username=username,
                defaults={
                    "email": f"{username}@demo-clinic.example",
                    "email_verified": True,
                    "role": role,
                    "organization": organization,
                    "is_staff": is_staff,
                    "is_superuser": is_staff,
                    "is_active": True,
                },
            )
            user.set_password(password)
            user.save(update_fields=["password"])
        created = seed_demo_patients(actor=User.objects.get(username="admin"))
        self.stdout.write(self.style.SUCCESS(f"Demo organization: {organization.name}"))
        self.stdout.write(f"Demo patients: {created} created, {DEMO_PATIENT_COUNT} in total.")
        self.stdout.write("Demo logins (username / password / role):")
        for username, role, password, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {password:<22} {role}")
