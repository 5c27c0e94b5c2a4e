"""Users in the Django admin: a clinic admin manages their own clinic's users and nothing more."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory

from accounts.models import Organization, Role, User
from accounts.onboarding import CLINIC_ADMIN_GROUP
from document.models import Document
from tests.factories import UserFactory

USERS = "/admin/accounts/user/"


@pytest.fixture
def alice(admin_client_for: Callable[[User], Client], clinic_admin: User) -> Client:
    return admin_client_for(clinic_admin)


def new_user_form(username: str, **extra: Any) -> dict[str, Any]:
    return {
        "username": username,
        "usable_password": "true",
        "password1": "a-long-new-password-2026",
        "password2": "a-long-new-password-2026",
        "email": f"{username}@northside.example",
        "role": Role.CLINICIAN,
        **extra,
    }


def test_a_clinic_admin_adds_users_to_their_own_clinic_only(
    alice: Client, clinic_admin: User, other_organization: Organization
) -> None:
    hijack = {
        "organization": other_organization.pk,
        "is_superuser": "on",
        "is_staff": "on",
        "groups": [Group.objects.get(name=CLINIC_ADMIN_GROUP).pk],
        "user_permissions": [Permission.objects.get(codename="delete_patient").pk],
    }

    response = alice.post(f"{USERS}add/", new_user_form("nina", **hijack))

    assert response.status_code == 302
    nina = User.objects.get(username="nina")
    assert nina.organization_id == clinic_admin.organization_id
    assert (nina.role, nina.is_superuser, nina.is_staff) == (Role.CLINICIAN, False, False)
    assert not nina.groups.exists()
    assert not nina.user_permissions.exists()


def test_a_clinic_admin_cannot_make_anyone_superuser_or_move_them(
    alice: Client, clinician: User, organization: Organization, other_organization: Organization
) -> None:
    form = alice.get(f"{USERS}{clinician.pk}/change/").context["adminform"].form

    alice.post(
        f"{USERS}{clinician.pk}/change/",
        {
            "username": clinician.username,
            "email": clinician.email,
            "role": Role.CLINICIAN,
            "is_active": "on",
            "is_superuser": "on",
            "organization": other_organization.pk,
        },
    )

    assert set(form.fields) == {
        "username",
        "password",
        "first_name",
        "last_name",
        "email",
        "role",
        "is_active",
    }
    clinician.refresh_from_db()
    assert (clinician.is_superuser, clinician.organization_id) == (False, organization.pk)


def test_giving_a_user_the_admin_role_gives_them_the_clinic_admin_access(
    alice: Client, clinician: User
) -> None:
    def post(role: str) -> User:
        alice.post(
            f"{USERS}{clinician.pk}/change/",
            {
                "username": clinician.username,
                "email": clinician.email,
                "role": role,
                "is_active": "on",
            },
        )
        return User.objects.get(pk=clinician.pk)

    promoted = post(Role.ADMIN)
    promoted_groups = list(promoted.groups.values_list("name", flat=True))
    demoted = post(Role.STAFF)

    assert (promoted.is_staff, promoted_groups) == (True, [CLINIC_ADMIN_GROUP])
    assert (demoted.is_staff, demoted.groups.exists()) == (False, False)


def test_another_clinics_users_and_their_password_forms_are_not_found(
    alice: Client, foreign_clinician: User
) -> None:
    listing = alice.get(USERS).content.decode()

    assert "charlie" not in listing
    assert alice.get(f"{USERS}{foreign_clinician.pk}/change/").status_code == 404
    assert alice.get(f"{USERS}{foreign_clinician.pk}/password/").status_code == 404
    reset = alice.post(
        f"{USERS}{foreign_clinician.pk}/password/",
        {"password1": "taken-over-2026-xx", "password2": "taken-over-2026-xx"},
    )
    assert reset.status_code == 404
    foreign_clinician.refresh_from_db()
    assert not foreign_clinician.check_password("taken-over-2026-xx")


def test_platform_records_are_hidden_from_a_clinic_admin(alice: Client) -> None:
    index = alice.get("/admin/").content.decode()

    for hidden in ("Organizations", "Groups", "Outstanding tokens", "Access attempts"):
        assert hidden not in index
    for url in (
        "/admin/accounts/organization/",
        "/admin/auth/group/",
        "/admin/token_blacklist/outstandingtoken/",
        "/admin/axes/accessattempt/",
        "/admin/social_django/usersocialauth/",
    ):
        assert alice.get(url).status_code == 403, url


def test_a_platform_operator_adds_a_clinic_user_but_never_one_without_a_clinic(
    admin_client_for: Callable[[User], Client], platform_operator: User, organization: Organization
) -> None:
    client = admin_client_for(platform_operator)

    homeless = client.post(f"{USERS}add/", new_user_form("homeless"))
    placed = client.post(f"{USERS}add/", new_user_form("placed", organization=organization.pk))

    assert homeless.status_code == 200
    assert "organization" in homeless.context["adminform"].form.errors
    assert placed.status_code == 302
    assert User.objects.get(username="placed").organization == organization
    assert not User.objects.filter(username="homeless").exists()


def test_making_a_clinic_user_superuser_is_a_form_error_while_they_have_a_clinic(
    admin_client_for: Callable[[User], Client], platform_operator: User, clinician: User
) -> None:
    response = admin_client_for(platform_operator).post(
        f"{USERS}{clinician.pk}/change/",
        {
            "username": clinician.username,
            "email": clinician.email,
            "role": clinician.role,
            "organization": clinician.organization_id,
            "is_active": "on",
            "is_superuser": "on",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()
    clinician.refresh_from_db()
    assert not clinician.is_superuser


def test_the_admin_header_names_the_product_and_the_clinic(
    alice: Client, admin_client_for: Callable[[User], Client], platform_operator: User
) -> None:
    clinic_page = alice.get("/admin/").content.decode()
    platform_page = admin_client_for(platform_operator).get("/admin/").content.decode()

    assert "Patient Management System · Northside Clinic" in clinic_page
    assert "Patient Management System · platform" in platform_page


def test_a_row_of_another_clinic_is_never_offered_as_a_choice(
    clinic_admin: User, foreign_clinician: User
) -> None:
    colleague = UserFactory.create(username="colleague", organization=clinic_admin.organization)
    request = RequestFactory().get("/admin/")
    request.user = clinic_admin
    document_admin = admin.site._registry[Document]

    field: Any = document_admin.formfield_for_foreignkey(
        Document._meta.get_field("uploaded_by"), request
    )

    assert set(field.queryset) == {clinic_admin, colleague}
