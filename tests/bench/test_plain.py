"""The plain DRF build the benchmark compares the API with answers what the API answers."""

from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from bench.plain import settings as plain_settings

PATIENTS_URL = "/api/patient/patients/"


def clients(username: str) -> tuple[APIClient, APIClient]:
    token = str(RefreshToken.for_user(User.objects.get(username=username)).access_token)
    api, plain = APIClient(), APIClient()
    for client in (api, plain):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api, plain


def plain_get(client: APIClient, path: str) -> Any:
    with override_settings(
        ROOT_URLCONF=plain_settings.ROOT_URLCONF, MIDDLEWARE=plain_settings.MIDDLEWARE
    ):
        return client.get(path)


@pytest.mark.parametrize(
    "query", ["?page_size=20", "?page_size=20&page=3", "?search={term}&page_size=20"]
)
def test_the_plain_list_and_search_answer_the_rows_of_the_api(
    dataset: dict[str, Any], query: str
) -> None:
    api, plain = clients(dataset["organizations"][0]["clinician"])
    path = PATIENTS_URL + query.format(term=dataset["search_terms"]["medium"]["term"])

    ours, theirs = api.get(path), plain_get(plain, path)

    assert ours.status_code == theirs.status_code == 200
    assert theirs.json()["results"]
    assert theirs.json()["results"] == ours.json()["results"]
    assert theirs.json()["count"] == ours.json()["count"]


def test_the_plain_detail_answers_the_patient_the_api_answers(dataset: dict[str, Any]) -> None:
    api, plain = clients(dataset["organizations"][0]["clinician"])
    first = api.get(f"{PATIENTS_URL}?page_size=1").json()["results"][0]

    ours = api.get(f"{PATIENTS_URL}{first['id']}/")
    theirs = plain_get(plain, f"{PATIENTS_URL}{first['id']}/")

    assert theirs.status_code == 200
    assert theirs.json() == ours.json() == first
    # Served by the plain build indeed: the API's headers (no-store, ETag) are not there.
    assert ours["ETag"]
    assert "ETag" not in theirs
    assert "Cache-Control" not in theirs


def test_the_plain_build_shows_another_clinics_patients_to_no_one(
    dataset: dict[str, Any],
) -> None:
    api, plain = clients(dataset["organizations"][0]["clinician"])
    _, other = clients(dataset["organizations"][1]["clinician"])
    first = api.get(f"{PATIENTS_URL}?page_size=1").json()["results"][0]

    assert plain_get(other, f"{PATIENTS_URL}{first['id']}/").status_code == 404
    assert plain_get(APIClient(), f"{PATIENTS_URL}{first['id']}/").status_code == 401
