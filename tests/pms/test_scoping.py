"""The one scoping rule, `visible_to(user)` (pms/scoping.py), on every clinic-owned model, and the
base view mixin that makes it impossible for a DRF view to forget it."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.test import APIClient

from accounts.models import Organization, Role, User
from audit.models import AuditEvent
from audit.services import audit_record
from document.models import Document
from otp.models import OTPCode
from patient.models import Patient
from pms.pagination import PageNumberPagination
from pms.scoping import ScopedViewMixin
from tests.factories import DocumentFactory, OTPCodeFactory, PatientFactory, UserFactory

SCOPED_MODELS = [User, Patient, Document, OTPCode, AuditEvent, Organization]


@pytest.fixture
def two_clinics(organization: Organization, other_organization: Organization) -> dict[str, Any]:
    """In each clinic: a user, a patient with a document, an OTP code and an audit event."""
    rows: dict[str, Any] = {}
    for key, clinic in (("ours", organization), ("theirs", other_organization)):
        user = UserFactory.create(organization=clinic, role=Role.ADMIN)
        patient = PatientFactory.create(organization=clinic)
        DocumentFactory.create(patient=patient)
        OTPCodeFactory.create(user=user)
        audit_record(
            request=RequestFactory().get("/"),
            action="patient.list",
            resource_type="patient",
            status_code=200,
            actor=user,
        )
        rows[key] = user
    # A failed sign-in of an unknown name belongs to no clinic.
    audit_record(
        request=RequestFactory().post("/api/auth/token/"),
        action="auth.token_obtain",
        resource_type="auth",
        status_code=401,
        actor_username="nobody",
    )
    return rows


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_a_clinic_user_sees_only_their_clinics_rows(
    two_clinics: dict[str, Any], model: Any
) -> None:
    ours: User = two_clinics["ours"]

    visible = model.objects.visible_to(ours)

    assert visible.exists()
    lookup = model.objects.visible_to(ours).organization_lookup
    assert set(visible.values_list(lookup, flat=True)) == {ours.organization_id}


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_a_platform_operator_sees_every_clinic_and_anonymous_sees_nothing(
    two_clinics: dict[str, Any], platform_operator: User, model: Any
) -> None:
    everything = model.objects.count()

    assert model.objects.visible_to(platform_operator).count() == everything
    assert not model.objects.visible_to(AnonymousUser()).exists()


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_an_admin_without_a_clinic_sees_nothing(two_clinics: dict[str, Any], model: Any) -> None:
    # The database refuses to store such a user (tests/accounts/test_onboarding.py); an
    # unsaved one shows the rule holds on its own.
    loner = UserFactory.build(organization=None, role=Role.ADMIN, is_staff=True)

    assert not model.objects.visible_to(loner).exists()


def test_events_of_no_clinic_are_seen_by_platform_operators_only(
    two_clinics: dict[str, Any],
    platform_operator: User,
    client_for: Callable[[User], APIClient],
) -> None:
    ours = two_clinics["ours"]

    as_clinic = client_for(ours).get("/api/audit/events/", {"action": "auth.token_obtain"})
    as_operator = client_for(platform_operator).get(
        "/api/audit/events/", {"action": "auth.token_obtain"}
    )

    assert as_clinic.status_code == 200
    assert as_clinic.json()["results"] == []
    assert [event["actor_username"] for event in as_operator.json()["results"]] == ["nobody"]


def test_the_admin_shows_a_clinic_admin_no_event_of_another_clinic_or_of_none(
    two_clinics: dict[str, Any], clinic_admin: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(clinic_admin).get("/admin/audit/auditevent/")

    shown = response.context["cl"].result_list
    assert response.status_code == 200
    assert {event.organization_id for event in shown} == {clinic_admin.organization_id}
    assert "nobody" not in response.content.decode()


def test_a_view_that_overrides_get_queryset_is_refused_when_its_class_is_made() -> None:
    with pytest.raises(ImproperlyConfigured, match="narrow_queryset"):

        class Leaky(ScopedViewMixin, viewsets.GenericViewSet):  # type: ignore[misc]
            scoped_model = Patient

            def get_queryset(self) -> Any:
                return Patient.objects.all()


def test_a_view_that_declares_nothing_more_is_scoped(
    two_clinics: dict[str, Any],
) -> None:
    class Plain(ScopedViewMixin, viewsets.GenericViewSet):  # type: ignore[misc]
        scoped_model = Patient

    view = Plain()
    view.request = RequestFactory().get("/")
    view.request.user = two_clinics["ours"]

    assert {p.organization_id for p in view.get_queryset()} == {two_clinics["ours"].organization_id}


def test_an_admin_without_a_clinic_gets_nothing_from_the_api_or_the_admin(
    two_clinics: dict[str, Any],
) -> None:
    loner = UserFactory.build(pk=10**6, organization=None, role=Role.ADMIN, is_staff=True)
    client = APIClient()
    client.force_authenticate(user=loner)  # such a user cannot be stored: see above
    request = RequestFactory().get("/admin/audit/auditevent/")
    request.user = loner

    events = client.get("/api/audit/events/")
    patients = client.get("/api/patient/patients/")
    in_admin = admin.site._registry[AuditEvent].get_queryset(request)

    assert (events.status_code, events.json()["results"]) == (200, [])
    assert (patients.status_code, patients.json()["results"]) == (200, [])
    assert not in_admin.exists()


def test_a_page_read_by_its_matched_ids_is_still_scoped(
    clinician: User, organization: Organization, other_organization: Organization
) -> None:
    """A filtered list's page is read by the ids its count matched, under the scope alone
    (pms/pagination.py, `among`): an id of another clinic never comes back through it."""
    ours = PatientFactory.create(organization=organization, full_name="Ada Sandoval")
    theirs = PatientFactory.create(organization=other_organization, full_name="Bo Sandoval")
    paginator = PageNumberPagination()
    paginator.request = Request(RequestFactory().get("/"))
    paginator.request.user = clinician
    matching = Patient.objects.visible_to(clinician).filter(full_name__icontains="sandoval")

    page = paginator.among(matching.values("pk", "full_name"), [ours.pk, theirs.pk])

    assert list(page) == [{"pk": ours.pk, "full_name": "Ada Sandoval"}]
    # The filter the ids already passed is not sent (nor planned) again; the scope is.
    sql = str(page.query).upper()
    assert "LIKE" not in sql
    assert "ORGANIZATION_ID" in sql
