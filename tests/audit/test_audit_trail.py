"""The audit trail: what is recorded, that it is append-only, and who may read it."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.models import AppendOnlyError, AuditEvent
from audit.services import audit_record
from tests.factories import TEST_PASSWORD

EVENTS_URL = "/api/audit/events/"


def test_a_sign_in_is_recorded_with_its_actor(api_client, clinician):
    response = api_client.post(
        "/api/auth/token/",
        {"username": "carol", "password": TEST_PASSWORD},
        HTTP_USER_AGENT="ClinicSPA/1.0",
        HTTP_X_REQUEST_ID="req-1",
    )

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="auth.token_obtain")
    assert event.actor == clinician
    assert event.actor_username == "carol"
    assert event.organization_id == clinician.organization_id
    assert event.outcome == "success"
    assert event.ip_address == "127.0.0.1"
    assert event.user_agent == "ClinicSPA/1.0"
    assert event.request_id == "req-1"
    assert event.details == {"fields": ["password", "username"]}


def test_a_failed_sign_in_is_recorded_as_denied_without_the_password(api_client, clinician):
    api_client.post("/api/auth/token/", {"username": "carol", "password": "guess-1"})

    event = AuditEvent.objects.get(action="auth.token_obtain")
    assert event.outcome == "denied"
    assert event.actor is None
    assert event.actor_username == "carol"
    assert event.details["error"] == "no_active_account"
    assert "guess-1" not in str(event.details)


def test_a_lockout_is_recorded(api_client, clinician, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api_client.post("/api/auth/token/", {"username": "carol", "password": "wrong"})

    last = AuditEvent.objects.filter(action="auth.token_obtain").first()
    assert last is not None
    assert last.details["error"] == "account_locked"
    assert last.status_code == 429


def test_refresh_and_logout_are_recorded_with_their_actor(api_client, clinician):
    pair = api_client.post(
        "/api/auth/token/", {"username": "carol", "password": TEST_PASSWORD}
    ).json()
    rotated = api_client.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}).json()
    api_client.post("/api/auth/token/blacklist/", {"refresh": rotated["refresh"]})

    refresh = AuditEvent.objects.get(action="auth.token_refresh")
    logout = AuditEvent.objects.get(action="auth.logout")
    assert (refresh.actor, refresh.outcome) == (clinician, "success")
    assert (logout.actor, logout.outcome) == (clinician, "success")


def test_recording_a_page_of_patients_costs_one_insert(rf, clinician, django_assert_num_queries):
    request = rf.get("/api/patient/patients/")
    request.user = clinician

    # 1. the INSERT of one row naming every patient
    with django_assert_num_queries(1):
        audit_record(
            request=request,
            action="patient.list",
            resource_type="patient",
            status_code=200,
            patient_ids=[1, 2, 3, 4, 5],
        )

    assert AuditEvent.objects.get().patient_ids == [1, 2, 3, 4, 5]


def test_a_failure_to_record_never_breaks_the_caller(rf, clinician, caplog):
    request = rf.get("/api/patient/patients/")
    request.user = clinician

    audit_record(
        request=request,
        action="patient.list",
        resource_type="patient",
        status_code=200,
        details={"unserializable": object()},
    )

    assert AuditEvent.objects.count() == 0
    assert "could not record audit event patient.list" in caplog.text
    audit_record(request=request, action="patient.list", resource_type="patient", status_code=200)
    assert AuditEvent.objects.count() == 1


def test_the_model_refuses_update_and_delete(rf, clinician):
    request = rf.get("/")
    request.user = clinician
    audit_record(request=request, action="patient.list", resource_type="patient", status_code=200)
    event = AuditEvent.objects.get()

    event.action = "patient.tampered"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="patient.tampered")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "patient.list"


@pytest.mark.usefixtures("postgres_only")
def test_postgresql_refuses_update_and_delete_on_the_table(rf, clinician):
    request = rf.get("/")
    request.user = clinician
    audit_record(request=request, action="patient.list", resource_type="patient", status_code=200)

    for sql in (
        "UPDATE audit_auditevent SET action = 'tampered'",
        "DELETE FROM audit_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert AuditEvent.objects.get().action == "patient.list"


def test_org_admins_read_their_organizations_trail_only(
    client_for, org_admin, clinician, foreign_clinician, rf
):
    for user in (clinician, foreign_clinician):
        request = rf.get("/api/patient/patients/42/")
        request.user = user
        audit_record(
            request=request,
            action="patient.retrieve",
            resource_type="patient",
            status_code=200,
            patient_ids=[41, 42, 43],
        )
        audit_record(
            request=request,
            action="patient.retrieve",
            resource_type="patient",
            status_code=200,
            patient_ids=[420],
        )

    response = client_for(org_admin).get(EVENTS_URL, {"patient": 42})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(row["actor_username"], row["patient_ids"]) for row in results] == [
        ("carol", [41, 42, 43])
    ]


@pytest.mark.parametrize("actor", ["clinician", "staff_user"])
def test_other_roles_cannot_read_the_trail(request, client_for, actor):
    response = client_for(request.getfixturevalue(actor)).get(EVENTS_URL)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_the_trail_filters_by_actor_action_outcome_and_dates(client_for, org_admin, clinician, rf):
    request = rf.get("/")
    request.user = clinician
    audit_record(request=request, action="patient.list", resource_type="patient", status_code=200)
    audit_record(request=request, action="document.list", resource_type="document", status_code=403)
    client = client_for(org_admin)

    def actions(**params):
        rows = client.get(EVENTS_URL, params).json()["results"]
        return sorted(row["action"] for row in rows if row["action"] != "audit.list")

    assert actions(actor=clinician.pk) == ["document.list", "patient.list"]
    assert actions(action="patient.") == ["patient.list"]
    assert actions(action="document.list") == ["document.list"]
    assert actions(outcome="denied") == ["document.list"]
    assert actions(occurred_after="2000-01-01T00:00:00Z", actor=clinician.pk) == [
        "document.list",
        "patient.list",
    ]
    assert actions(occurred_before="2000-01-01T00:00:00Z") == []
    bad = client.get(EVENTS_URL, {"outcome": "maybe"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"


def test_reading_the_trail_is_itself_recorded(client_for, org_admin):
    client_for(org_admin).get(EVENTS_URL, {"patient": 7})

    event = AuditEvent.objects.get(action="audit.list")
    assert event.actor == org_admin
    assert event.details["params"] == ["patient"]
