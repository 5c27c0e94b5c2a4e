"""The admin's layers (sessions, session user, messages, CSRF, axes' lockout page) run for
/admin/ only (pms.middleware.AdminOnly); the API, signed in by bearer token, goes past them."""

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from patient.models import Patient
from tests.factories import TEST_PASSWORD

ADMIN_LOGIN = "/admin/login/?next=/admin/"
PATIENTS = "/api/patient/patients/"


def test_the_admin_signs_in_with_its_session_and_csrf_token(clinic_admin: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    form = browser.get(ADMIN_LOGIN)
    token = form.cookies["csrftoken"].value

    signed_in = browser.post(
        ADMIN_LOGIN,
        {"username": "alice", "password": TEST_PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert signed_in.status_code == 302
    assert "sessionid" in signed_in.cookies
    assert browser.get("/admin/").status_code == 200


def test_an_admin_post_without_its_csrf_token_is_refused(clinic_admin: User) -> None:
    browser = Client(enforce_csrf_checks=True)

    refused = browser.post(ADMIN_LOGIN, {"username": "alice", "password": TEST_PASSWORD})

    assert refused.status_code == 403
    assert "sessionid" not in refused.cookies


def test_an_admin_session_cookie_does_not_authenticate_the_api(
    clinic_admin: User, admin_client_for: Callable[[User], Client]
) -> None:
    browser = admin_client_for(clinic_admin)
    assert browser.get("/admin/").status_code == 200

    read = browser.get(PATIENTS)
    # A cross-site form post carries the cookie but no CSRF token: it must not be a write.
    write = browser.post(PATIENTS, {"full_name": "Mallory", "age": 40})

    assert read.status_code == 401
    assert write.status_code == 401
    assert write.json()["error"]["code"] == "not_authenticated"
    assert not Patient.objects.filter(full_name="Mallory").exists()


def test_an_api_answer_sets_no_cookie_and_does_not_vary_on_one(as_clinician: APIClient) -> None:
    response = as_clinician.get(PATIENTS)

    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


@pytest.mark.parametrize("path", ["/admin/login/", "/api/auth/token/"])
def test_a_locked_out_address_is_refused_with_the_right_password(
    clinician: User, path: str
) -> None:
    browser = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        browser.post(path, {"username": "carol", "password": "wrong"})

    refused = browser.post(path, {"username": "carol", "password": TEST_PASSWORD})

    assert refused.status_code == 429
    assert "sessionid" not in refused.cookies
    assert "access" not in refused.content.decode()


def test_every_api_write_names_its_user_in_the_patient_history(
    client_for: Callable[[User], APIClient], clinician: User, org_admin: User
) -> None:
    as_clinician, as_admin = client_for(clinician), client_for(org_admin)
    created = as_clinician.post(PATIENTS, {"full_name": "Ada Lovelace", "age": 36})
    detail = f"{PATIENTS}{created.json()['id']}/"
    as_clinician.patch(detail, {"notes": "seen"}, HTTP_IF_MATCH='"1"')
    as_clinician.delete(detail)
    as_admin.post(f"{detail}restore/")

    patient = Patient.objects.get(pk=created.json()["id"])
    authors = [record.history_user for record in patient.history.order_by("history_id")]

    assert authors == [clinician, clinician, clinician, org_admin]
