"""The access matrix of the Django admin (docs/architecture.md, "The Django admin").

Every registered ModelAdmin × every URL it serves (walked from its `get_urls()`, custom ones and
actions included) × actor (anonymous, clinic A's clinician who is not staff, clinic A's admin,
clinic B's admin, a platform operator) × object (clinic A's, clinic B's). Expected:

- anonymous and non-staff users are sent to the login page;
- a clinic admin gets 404 for another clinic's row, 403 for platform records (tokens, lockouts,
  organizations...), and reaches on their own clinic's rows exactly what `EXPECTATIONS` lists;
- a platform operator reaches exactly what `EXPECTATIONS` lists, in every clinic;
- no page shows a token string; no patient or document is ever deleted; every refused request
  leaves the database as it was: it sends no write statement (tests/writes.py).

A registered ModelAdmin, or a URL of one, without an expectation fails
`test_every_model_admin_and_url_has_an_expectation`.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from social_django.models import Association, Nonce, UserSocialAuth

from accounts.models import Organization, Role, SignInFailureStreak, User
from accounts.onboarding import CLINIC_ADMIN_GROUP, user_sync_admin_access
from document.models import Document
from otp.models import OTPCode
from patient.models import Patient
from pms.models import FailedTask
from tests.factories import (
    AuditEventFactory,
    DocumentFactory,
    GoogleIdentityFactory,
    OTPCodeFactory,
    PatientFactory,
    UserFactory,
)
from tests.writes import writes_recorded

ANONYMOUS, CLINICIAN, ADMIN_A, ADMIN_B, OPERATOR = (
    "anonymous",
    "clinician A",
    "admin A",
    "admin B",
    "operator",
)
ACTORS = (ANONYMOUS, CLINICIAN, ADMIN_A, ADMIN_B, OPERATOR)
PAGES = frozenset({"changelist", "change", "history"})
EVERY_PAGE = PAGES | {"add", "delete"}


@dataclass(frozen=True)
class Expect:
    """`clinic`: rows belong to a clinic (else platform records, superusers only). The sets name
    the URL kinds each admin reaches on rows of their own reach."""

    clinic: bool
    clinic_admin: frozenset[str] = frozenset()
    operator: frozenset[str] = field(default_factory=frozenset)


PATIENT_PAGES = PAGES | {"simple_history", "document_download", "action:archive", "action:restore"}
EXPECTATIONS: dict[str, Expect] = {
    "auth.group": Expect(False, operator=EVERY_PAGE),
    "accounts.organization": Expect(False, operator=EVERY_PAGE),
    "accounts.signinfailurestreak": Expect(False, operator=PAGES | {"delete"}),
    "pms.failedtask": Expect(False, operator=PAGES | {"delete", "action:run_again"}),
    "token_blacklist.outstandingtoken": Expect(False, operator=PAGES),
    "token_blacklist.blacklistedtoken": Expect(False, operator=PAGES),
    "axes.accessattempt": Expect(False, operator=PAGES | {"delete"}),
    "axes.accesslog": Expect(False, operator=PAGES | {"delete"}),
    "axes.accessfailurelog": Expect(False, operator=PAGES | {"delete"}),
    "social_django.usersocialauth": Expect(False, operator=EVERY_PAGE),
    "social_django.nonce": Expect(False, operator=EVERY_PAGE),
    "social_django.association": Expect(False, operator=EVERY_PAGE),
    "accounts.user": Expect(
        True,
        clinic_admin=PAGES | {"add", "password_change"},
        operator=EVERY_PAGE | {"password_change"},
    ),
    "patient.patient": Expect(True, clinic_admin=PATIENT_PAGES | {"add"}, operator=PATIENT_PAGES),
    "document.document": Expect(
        True,
        clinic_admin=PAGES | {"action:archive"},
        operator=PAGES | {"action:archive", "action:scan_again"},
    ),
    "otp.otpcode": Expect(True, clinic_admin=PAGES, operator=PAGES | {"delete"}),
    "audit.auditevent": Expect(True, clinic_admin=PAGES, operator=PAGES),
}


def _kind(model_admin: admin.ModelAdmin, name: str) -> str:
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_"
    return name.removeprefix(prefix) if name.startswith(prefix) else name.removeprefix("auth_user_")


def url_kinds(model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
    """(kind, URL name) of every named URL of the ModelAdmin, and its actions."""
    kinds = [(_kind(model_admin, p.name), p.name) for p in model_admin.get_urls() if p.name]
    # The actions the ModelAdmin declares (the site-wide bulk delete is checked on its own).
    actions = [a for a in (model_admin.actions or ()) if isinstance(a, str)]
    changelist = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist"
    return kinds + [(f"action:{action}", changelist) for action in actions]


REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


def test_every_model_admin_and_url_has_an_expectation() -> None:
    labels = {model._meta.label_lower for model, _ in REGISTRY}
    assert sorted(labels - set(EXPECTATIONS)) == []
    assert sorted(set(EXPECTATIONS) - labels) == []
    known = {kind for expect in EXPECTATIONS.values() for kind in expect.operator}
    known |= {kind for expect in EXPECTATIONS.values() for kind in expect.clinic_admin}
    for _, model_admin in REGISTRY:
        unknown = {kind for kind, _ in url_kinds(model_admin)} - known
        assert unknown == set(), f"{model_admin}: URLs without an expectation: {unknown}"


# --- the world ----------------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User]
    # Per model label: the row of clinic A and of clinic B (platform records: one row, in A).
    rows: dict[str, tuple[Any, Any | None]]
    tokens: list[str]


def _clinic(name: str, slug: str) -> tuple[Organization, User, User, Patient, Document]:
    organization = Organization.objects.create(name=name, slug=slug)
    admin_user = UserFactory.create(role=Role.ADMIN, organization=organization)
    user_sync_admin_access(user=admin_user)
    clinician = UserFactory.create(role=Role.CLINICIAN, organization=organization)
    patient = PatientFactory.create(organization=organization, full_name=f"{name} Patient")
    document = DocumentFactory.create(patient=patient, uploaded=True)
    return organization, admin_user, clinician, patient, document


@pytest.fixture
def world(db: None, settings: Any, tmp_path: Any) -> World:
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path
    org_a, admin_a, clinician_a, patient_a, document_a = _clinic("Clinic A", "clinic-a")
    org_b, admin_b, clinician_b, patient_b, document_b = _clinic("Clinic B", "clinic-b")
    operator = User.objects.create_superuser("root", "root@example.com", "x-very-long-pass-1")
    refresh_a, refresh_b = RefreshToken.for_user(admin_a), RefreshToken.for_user(admin_b)
    RefreshToken.for_user(clinician_a).blacklist()
    now = timezone.now()
    rows: dict[str, tuple[Any, Any | None]] = {
        "auth.group": (Group.objects.get(name=CLINIC_ADMIN_GROUP), None),
        "accounts.organization": (org_a, org_b),
        "pms.failedtask": (
            FailedTask.objects.create(
                task_id="t-1", task_name="otp.deliver", args=[1], retries=7, error_type="E"
            ),
            None,
        ),
        "accounts.signinfailurestreak": (
            # Of a user who never signs in here (a sign-in ends the streak).
            SignInFailureStreak.objects.create(
                user=UserFactory.create(organization=org_a), failures=3, last_failure_at=now
            ),
            None,
        ),
        "token_blacklist.outstandingtoken": (
            OutstandingToken.objects.get(jti=refresh_a["jti"]),
            None,
        ),
        "token_blacklist.blacklistedtoken": (BlacklistedToken.objects.get(), None),
        "axes.accessattempt": (
            AccessAttempt.objects.create(
                username="x", ip_address="10.0.0.1", failures_since_start=1
            ),
            None,
        ),
        "axes.accesslog": (AccessLog.objects.create(username="x", ip_address="10.0.0.1"), None),
        "axes.accessfailurelog": (
            AccessFailureLog.objects.create(username="x", ip_address="10.0.0.1", locked_out=False),
            None,
        ),
        "social_django.usersocialauth": (GoogleIdentityFactory.create(user=clinician_a), None),
        "social_django.nonce": (Nonce.objects.create(server_url="s", timestamp=1, salt="n"), None),
        "social_django.association": (
            Association.objects.create(
                server_url="s", handle="h", secret="c2VjcmV0", issued=1, lifetime=1, assoc_type="t"
            ),
            None,
        ),
        "accounts.user": (clinician_a, clinician_b),
        "patient.patient": (patient_a, patient_b),
        "document.document": (document_a, document_b),
        "otp.otpcode": (
            OTPCodeFactory.create(user=clinician_a),
            OTPCodeFactory.create(user=clinician_b),
        ),
        "audit.auditevent": (
            AuditEventFactory.create(organization=org_a),
            AuditEventFactory.create(organization=org_b),
        ),
    }
    users = {CLINICIAN: clinician_a, ADMIN_A: admin_a, ADMIN_B: admin_b, OPERATOR: operator}
    tokens = [str(refresh_a), str(refresh_b), str(refresh_a.access_token)]
    tokens += list(OutstandingToken.objects.values_list("token", flat=True))
    return World(users=users, rows=rows, tokens=tokens)


# --- the walk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    actor: str
    kind: str
    url: str
    owner: str  # "A", "B", or "" for pages of no row
    post: dict[str, Any] | None = None


def _args(kind: str, row: Any) -> list[Any]:
    if kind == "simple_history":
        return [row.pk, row.history.first().history_id]
    if kind == "document_download":
        return [row.pk, row.documents.get().pk]
    return [row.pk]


def calls(world: World, label: str, model_admin: admin.ModelAdmin) -> Iterator[Call]:
    row_a, row_b = world.rows[label]
    for kind, name in url_kinds(model_admin):
        for actor in ACTORS:
            if kind in ("changelist", "add"):
                yield Call(actor, kind, reverse(f"admin:{name}"), "")
                continue
            for owner, row in (("A", row_a), ("B", row_b)):
                if row is None:
                    continue
                if kind.startswith("action:"):
                    body = {"action": kind.split(":")[1], "_selected_action": [row.pk]}
                    yield Call(actor, kind, reverse(f"admin:{name}"), owner, body)
                    continue
                yield Call(actor, kind, reverse(f"admin:{name}", args=_args(kind, row)), owner)
                if kind == "delete" and label in ("patient.patient", "document.document"):
                    yield Call(
                        actor,
                        "delete",
                        reverse(f"admin:{name}", args=[row.pk]),
                        owner,
                        {"post": "yes"},
                    )


def expected(call: Call, expect: Expect) -> str:
    """ "login", "404", "403" or "ok"."""
    if call.actor in (ANONYMOUS, CLINICIAN):
        return "login"
    if call.actor == OPERATOR:
        return "ok" if call.kind in expect.operator else "403"
    if not expect.clinic:
        return "403"
    mine = "A" if call.actor == ADMIN_A else "B"
    if call.owner and call.owner != mine:
        # An action on another clinic's row finds nothing to act on: the list comes back. An
        # action the clinic admin may not run at all is refused whatever the row.
        if call.kind.startswith("action:"):
            return "ignored" if call.kind in expect.clinic_admin else "403"
        return "404"
    return "ok" if call.kind in expect.clinic_admin else "403"


def outcome(response: Any) -> str:
    location = response.get("Location", "")
    if response.status_code == 302 and "/admin/login/" in location:
        return "login"
    if response.status_code in (403, 404):
        return str(response.status_code)
    if response.status_code in (200, 302):
        return "ok"
    return f"status {response.status_code}"


@pytest.mark.parametrize(
    ("label", "model_admin"),
    [(model._meta.label_lower, model_admin) for model, model_admin in REGISTRY],
    ids=[model._meta.label for model, _ in REGISTRY],
)
def test_the_admin_keeps_every_clinic_to_itself(
    world: World, label: str, model_admin: admin.ModelAdmin
) -> None:
    expect = EXPECTATIONS[label]
    clients = {actor: Client() for actor in ACTORS}
    for actor, user in world.users.items():
        clients[actor].force_login(user)
    mismatches = []
    for call in calls(world, label, model_admin):
        want = expected(call, expect)
        client = clients[call.actor]
        with writes_recorded() as writes:
            response = (
                client.post(call.url, call.post) if call.post is not None else client.get(call.url)
            )
        got = outcome(response)
        # A call that must change nothing (a refusal, or an action on another clinic's row)
        # sends no write (tests/writes.py); a permitted call may change what it is for.
        if want != "ok":
            what = "an action on another clinic's row" if want == "ignored" else "a refusal"
            assert writes == [], f"{call}: {what} wrote to the database"
        if want == "ignored":
            want = "ok"
        if got != want:
            mismatches.append(
                f"{call.actor:>11} {call.kind:<20} row {call.owner or '-'}: {got}, expected {want}"
            )
        content = getattr(response, "content", b"").decode(errors="replace")
        leaked = [token[:12] for token in world.tokens if token in content]
        assert leaked == [], f"{call}: the page shows a token"
    assert mismatches == []
    assert Patient.objects.filter(is_active=True).count() >= 1
    assert Document.objects.count() == 2
    assert OTPCode.objects.count() >= 1
    assert UserSocialAuth.objects.count() == 1


@pytest.mark.parametrize("actor", [ADMIN_A, OPERATOR])
def test_no_admin_offers_a_bulk_delete_of_patients_or_documents(world: World, actor: str) -> None:
    request = RequestFactory().get("/admin/")
    request.user = world.users[actor]
    for model in (Patient, Document):
        assert "delete_selected" not in admin.site._registry[model].get_actions(request)
