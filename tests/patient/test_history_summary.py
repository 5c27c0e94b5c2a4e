"""GET /{id}/summary/ and GET /{id}/history/."""

from rest_framework.test import APIClient

from accounts.models import User
from document.models import DocumentType
from patient.models import Patient
from tests.patient.conftest import LIST_URL, detail_url


def test_the_summary_holds_the_patient_and_the_documents_block(
    as_staff: APIClient, patient: Patient
) -> None:
    response = as_staff.get(detail_url(patient, "summary/"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"patient", "documents"}
    assert body["patient"]["id"] == patient.pk
    assert body["patient"]["version"] == patient.version
    assert body["documents"] == {
        "total": 0,
        "uploaded": 0,
        "pending": 0,
        "total_bytes": 0,
        "by_type": dict.fromkeys(DocumentType.values, 0),
        "latest": [],
    }


def test_history_shows_versions_authors_and_changed_field_names(
    as_clinician: APIClient,
    as_staff: APIClient,
    as_admin: APIClient,
    clinician: User,
    staff_user: User,
    org_admin: User,
) -> None:
    created = as_clinician.post(
        LIST_URL,
        {"full_name": "Hist Ory", "age": 30, "email": "h@example.com", "gender": "F"},
        format="json",
    ).json()
    url = detail_url(created["id"])
    as_staff.patch(url, {"phone": "+12025550143", "notes": "n"}, format="json")
    as_clinician.patch(url, {"notes": "n", "gender": "O"}, format="json")
    as_admin.delete(url)
    as_admin.post(url + "restore/")

    response = as_clinician.get(url + "history/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    entries = body["results"]
    assert [e["version"] for e in entries] == [5, 4, 3, 2, 1]
    assert [e["history_type"] for e in entries] == [
        "updated",
        "updated",
        "updated",
        "updated",
        "created",
    ]
    assert [e["user"]["username"] for e in entries] == ["alice", "alice", "carol", "bob", "carol"]
    assert entries[0]["changed_fields"] == ["is_active", "archived_at"]
    assert entries[1]["changed_fields"] == ["is_active", "archived_at"]
    assert entries[2]["changed_fields"] == ["gender"]
    assert entries[3]["changed_fields"] == ["phone", "notes"]
    assert entries[4]["changed_fields"] == [
        "mrn",
        "full_name",
        "email",
        "date_of_birth",
        "birth_date_estimated",
        "gender",
        "is_active",
    ]
    assert all(entry["history_date"] for entry in entries)
    # Names only: no value of any field is in the history.
    assert "+12025550143" not in response.content.decode()


def test_changed_fields_are_right_across_page_boundaries(
    as_clinician: APIClient, patient: Patient
) -> None:
    url = detail_url(patient)
    for value in ("a", "b", "c"):
        as_clinician.patch(url, {"notes": value}, format="json")
    as_clinician.patch(url, {"address": "1 Road"}, format="json")

    pages = [
        as_clinician.get(f"{url}history/?page_size=1&page={n}").json()["results"][0]
        for n in range(1, 6)
    ]

    assert [p["changed_fields"] for p in pages[:4]] == [
        ["address"],
        ["notes"],
        ["notes"],
        ["notes"],
    ]
    assert pages[4]["history_type"] == "created"


def test_a_version_written_without_a_known_user_has_a_null_user(
    as_clinician: APIClient, patient: Patient
) -> None:
    response = as_clinician.get(detail_url(patient, "history/"))

    assert response.json()["results"][0]["user"] is None
