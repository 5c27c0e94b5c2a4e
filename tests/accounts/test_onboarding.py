"""Onboarding a clinic (`create_clinic`), the demo clinic (`seed_demo`) and the rule that a
superuser has no clinic while everyone else has one."""

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from accounts.models import Organization, Role, User
from accounts.onboarding import (
    CLINIC_ADMIN_GROUP,
    CLINIC_ADMIN_PERMISSIONS,
    user_sync_admin_access,
)
from tests.factories import UserFactory


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_clinic_makes_a_clinic_admin_and_prints_the_password_once(
    db: None, api_client: Any
) -> None:
    printed = run(
        "create_clinic",
        "Northside Clinic",
        "--slug=northside",
        "--admin-username=nora",
        "--admin-email=nora@northside.example",
    )

    clinic = Organization.objects.get(slug="northside")
    nora = User.objects.get(username="nora")
    password = printed.split("Password (shown once, store it now): ")[1].strip()
    assert clinic.name == "Northside Clinic"
    assert (nora.organization, nora.role, nora.is_staff, nora.is_superuser) == (
        clinic,
        Role.ADMIN,
        True,
        False,
    )
    assert list(nora.groups.values_list("name", flat=True)) == [CLINIC_ADMIN_GROUP]
    assert printed.count(password) == 1
    token = api_client.post("/api/auth/token/", {"username": "nora", "password": password})
    assert token.status_code == 200


def test_create_clinic_reads_the_password_from_a_file_and_never_prints_it(
    db: None, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("a-long-mounted-secret-2026\n")

    printed = run(
        "create_clinic",
        "Eastside",
        "--slug=eastside",
        "--admin-username=erin",
        "--admin-email=erin@eastside.example",
        f"--admin-password-file={secret}",
    )

    assert "a-long-mounted-secret-2026" not in printed
    assert User.objects.get(username="erin").check_password("a-long-mounted-secret-2026")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slug=taken", "--admin-username=new", "--admin-email=new@x.example"], "slug"),
        (["--slug=fresh", "--admin-username=alice", "--admin-email=new@x.example"], "username"),
        (["--slug=fresh", "--admin-username=new", "--admin-email=ALICE@example.com"], "email"),
    ],
)
def test_create_clinic_refuses_a_taken_slug_username_or_email(
    org_admin: User, args: list[str], message: str
) -> None:
    Organization.objects.create(name="Taken", slug="taken")
    before = (Organization.objects.count(), User.objects.count())

    with pytest.raises(CommandError, match=message):
        run("create_clinic", "Fresh", *args)

    assert (Organization.objects.count(), User.objects.count()) == before


def test_create_clinic_refuses_a_weak_password(db: None, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("12345678")

    with pytest.raises(CommandError, match="too common|entirely numeric"):
        run(
            "create_clinic",
            "Weak",
            "--slug=weak",
            "--admin-username=wendy",
            "--admin-email=w@weak.example",
            f"--admin-password-file={secret}",
        )
    assert not Organization.objects.filter(slug="weak").exists()


def test_seed_demo_refuses_to_run_with_debug_off(db: None, settings: Any) -> None:
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        run("seed_demo")

    assert not User.objects.exists()


def test_seed_demo_is_idempotent_makes_no_superuser_and_its_logins_work(
    db: None, settings: Any, api_client: Any
) -> None:
    settings.DEBUG = True
    run("seed_demo")
    printed = run("seed_demo")

    demo = Organization.objects.get(slug="demo-clinic")
    assert set(User.objects.values_list("username", "role", "is_staff", "is_superuser")) == {
        ("admin", "admin", True, False),
        ("clinician", "clinician", False, False),
        ("staff", "staff", False, False),
    }
    assert set(User.objects.values_list("organization", flat=True)) == {demo.pk}
    assert User.objects.get(username="admin").groups.get().name == CLINIC_ADMIN_GROUP
    assert "clinician-demo-2024!" in printed
    response = api_client.post(
        "/api/auth/token/", {"username": "clinician", "password": "clinician-demo-2024!"}
    )
    assert response.status_code == 200


def test_the_clinic_admin_group_holds_exactly_its_permissions(db: None) -> None:
    group = Group.objects.get(name=CLINIC_ADMIN_GROUP)  # made by the data migration

    held = set(group.permissions.values_list("content_type__app_label", "codename"))

    assert held == {
        (app_label, f"{action}_{model}")
        for app_label, model, actions in CLINIC_ADMIN_PERMISSIONS
        for action in actions
    }
    assert not any(codename.startswith("delete_") for _, codename in held)


@pytest.mark.parametrize(("is_superuser", "has_organization"), [(False, False), (True, True)])
def test_the_database_refuses_a_clinic_user_without_a_clinic_and_a_superuser_with_one(
    organization: Organization, is_superuser: bool, has_organization: bool
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory.create(
            is_superuser=is_superuser, organization=organization if has_organization else None
        )


def test_a_deleted_clinic_admin_group_is_rebuilt_with_its_permissions(org_admin: User) -> None:
    Group.objects.filter(name=CLINIC_ADMIN_GROUP).delete()

    user_sync_admin_access(user=org_admin)

    group = org_admin.groups.get()
    assert group.name == CLINIC_ADMIN_GROUP
    assert group.permissions.count() == sum(
        len(actions) for _, _, actions in CLINIC_ADMIN_PERMISSIONS
    )
