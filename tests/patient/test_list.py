"""GET /patients/: search, gender, age_min, age_max, ordering, page, page_size."""

from collections.abc import Callable
from datetime import date, timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, User
from patient.filters import years_before
from patient.models import Gender, Patient
from tests.factories import PatientFactory
from tests.patient.conftest import LIST_URL, detail_url, error_code, error_details, ids


def born_aged(age: int) -> date:
    """A birth date giving exactly `age` today, with the birthday well away from today."""
    return years_before(timezone.localdate(), age) - timedelta(days=100)


@pytest.fixture
def people(organization: Organization) -> dict[str, Patient]:
    rows = [
        ("john", "John Smith", Gender.MALE, 30, "B-2", "js@example.com", "+12025550101"),
        ("johnny", "Johnny Walker", Gender.MALE, 70, "A-1", "jw@example.com", "+12025550102"),
        ("joan", "Joan Baker", Gender.FEMALE, 25, "C-3", "jb@example.com", "+12025550103"),
        ("mary", "Mary Johnson", Gender.FEMALE, 17, "E-5", "mj@example.com", "+12025550104"),
        ("peter", "Peter Pan", Gender.MALE, 45, "D-4", "john.p@example.com", "+12025550143"),
        ("sam", "Sam Quill", Gender.OTHER, 50, "XJ-99", "sq@example.com", "+447946095800"),
    ]
    return {
        key: PatientFactory.create(
            organization=organization,
            full_name=name,
            gender=gender,
            date_of_birth=born_aged(age),
            mrn=mrn,
            email=email,
            phone=phone,
        )
        for key, name, gender, age, mrn, email, phone in rows
    }


def listed(client: APIClient, query: str) -> list[int]:
    response = client.get(f"{LIST_URL}?{query}")
    assert response.status_code == 200, response.json()
    return ids(response)


def test_the_issue_example_answers_as_described(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    result = listed(as_clinician, "search=john&age_min=18&age_max=65&gender=M&ordering=-created_at")

    # John Smith by name, Peter Pan by email; Johnny is 70, Mary is female and 17.
    assert result == [people["peter"].pk, people["john"].pk]


def test_the_default_order_is_newest_first(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    assert listed(as_clinician, "") == [p.pk for p in reversed(people.values())]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("john", {"john", "johnny", "mary", "peter"}),
        ("JOHN", {"john", "johnny", "mary", "peter"}),
        ("walker", {"johnny"}),
        ("jb@example", {"joan"}),
        ("xj-9", {"sam"}),
        ("(202) 555-01", {"john", "johnny", "joan", "mary", "peter"}),
        ("0143", {"peter"}),
        ("+44 79", {"sam"}),
        ("nobody", set()),
    ],
)
def test_search_matches_name_email_mrn_and_phone(
    as_clinician: APIClient, people: dict[str, Patient], term: str, expected: set[str]
) -> None:
    result = listed(as_clinician, f"search={term.replace('+', '%2B')}")

    assert set(result) == {people[key].pk for key in expected}


@pytest.mark.parametrize(
    ("gender", "expected"),
    [("M", {"john", "johnny", "peter"}), ("F", {"joan", "mary"}), ("O", {"sam"}), ("U", set())],
)
def test_gender_filters(
    as_clinician: APIClient, people: dict[str, Patient], gender: str, expected: set[str]
) -> None:
    assert set(listed(as_clinician, f"gender={gender}")) == {people[k].pk for k in expected}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("age_min=18", {"john", "johnny", "joan", "peter", "sam"}),
        ("age_max=29", {"joan", "mary"}),
        ("age_min=30&age_max=50", {"john", "peter", "sam"}),
        ("age_min=45&age_max=45", {"peter"}),
        ("age_min=0&age_max=150", {"john", "johnny", "joan", "mary", "peter", "sam"}),
    ],
)
def test_age_filters(
    as_clinician: APIClient, people: dict[str, Patient], query: str, expected: set[str]
) -> None:
    assert set(listed(as_clinician, query)) == {people[k].pk for k in expected}


def test_age_bounds_count_completed_years_to_the_day(
    as_clinician: APIClient, organization: Organization
) -> None:
    today = timezone.localdate()
    turns_18_today = PatientFactory.create(
        organization=organization, date_of_birth=years_before(today, 18)
    )
    turns_18_tomorrow = PatientFactory.create(
        organization=organization, date_of_birth=years_before(today, 18) + timedelta(days=1)
    )
    turns_66_today = PatientFactory.create(
        organization=organization, date_of_birth=years_before(today, 66)
    )
    turns_66_tomorrow = PatientFactory.create(
        organization=organization, date_of_birth=years_before(today, 66) + timedelta(days=1)
    )

    adults = set(listed(as_clinician, "age_min=18"))
    up_to_65 = set(listed(as_clinician, "age_max=65"))

    assert turns_18_today.pk in adults
    assert turns_18_tomorrow.pk not in adults
    assert turns_66_tomorrow.pk in up_to_65
    assert turns_66_today.pk not in up_to_65


@pytest.mark.parametrize(
    ("today", "age_min_includes"),
    [
        # Born 29 Feb 2008: 17 on 28 Feb 2026, 18 from 1 Mar 2026.
        ("2026-02-28", False),
        ("2026-03-01", True),
    ],
)
def test_someone_born_on_29_february_comes_of_age_on_1_march(
    client_for: Callable[[User], APIClient],
    clinician: User,
    organization: Organization,
    today: str,
    age_min_includes: bool,
) -> None:
    leapling = PatientFactory.create(organization=organization, date_of_birth=date(2008, 2, 29))
    with time_machine.travel(f"{today}T12:00:00Z", tick=False):
        client = client_for(clinician)
        response = client.get(f"{LIST_URL}?age_min=18")
        detail = client.get(detail_url(leapling)).json()

    assert (leapling.pk in ids(response)) is age_min_includes
    assert detail["age"] == (18 if age_min_includes else 17)


def test_age_max_on_29_february_uses_28_february_in_common_years(
    client_for: Callable[[User], APIClient], clinician: User, organization: Organization
) -> None:
    # On 29 Feb 2028, someone born 28 Feb 1962 is 66 and someone born 1 Mar 1962 is 65.
    sixty_six = PatientFactory.create(organization=organization, date_of_birth=date(1962, 2, 28))
    sixty_five = PatientFactory.create(organization=organization, date_of_birth=date(1962, 3, 1))
    with time_machine.travel("2028-02-29T12:00:00Z", tick=False):
        client = client_for(clinician)
        result = ids(client.get(f"{LIST_URL}?age_max=65"))

    assert sixty_five.pk in result
    assert sixty_six.pk not in result


def _expected(people: dict[str, Patient], key: str, reverse: bool) -> list[int]:
    ordered = sorted(people.values(), key=lambda p: (getattr(p, key), p.pk), reverse=reverse)
    return [p.pk for p in ordered]


@pytest.mark.parametrize(
    ("ordering", "key", "reverse"),
    [
        ("full_name", "full_name", False),
        ("-full_name", "full_name", True),
        ("created_at", "created_at", False),
        ("-created_at", "created_at", True),
        ("mrn", "mrn", False),
        ("-mrn", "mrn", True),
        ("age", "age", False),
        ("-age", "age", True),
    ],
)
def test_ordering(
    as_clinician: APIClient, people: dict[str, Patient], ordering: str, key: str, reverse: bool
) -> None:
    assert listed(as_clinician, f"ordering={ordering}") == _expected(people, key, reverse)


def test_ordering_by_updated_at_follows_the_latest_change(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    as_clinician.patch(detail_url(people["joan"]), {"notes": "touched"}, format="json")

    assert listed(as_clinician, "ordering=-updated_at")[0] == people["joan"].pk
    assert listed(as_clinician, "ordering=updated_at")[-1] == people["joan"].pk


def test_equal_sort_keys_are_broken_by_id(
    as_clinician: APIClient, organization: Organization
) -> None:
    twins = PatientFactory.create_batch(3, organization=organization, full_name="Twin Same")

    assert listed(as_clinician, "ordering=full_name") == [t.pk for t in twins]
    assert listed(as_clinician, "ordering=-full_name") == [t.pk for t in reversed(twins)]


def test_ordering_combines_with_filters(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    result = listed(as_clinician, "gender=F&ordering=-age")

    assert result == [people["joan"].pk, people["mary"].pk]


def test_pages_follow_page_and_page_size(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    expected = _expected(people, "full_name", False)

    first = as_clinician.get(f"{LIST_URL}?ordering=full_name&page_size=4").json()
    second = as_clinician.get(f"{LIST_URL}?ordering=full_name&page_size=4&page=2").json()

    assert first["count"] == second["count"] == 6
    assert [row["id"] for row in first["results"]] == expected[:4]
    assert [row["id"] for row in second["results"]] == expected[4:]
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert second["next"] is None


def test_the_default_page_size_is_20_and_the_maximum_100(
    as_clinician: APIClient, organization: Organization
) -> None:
    PatientFactory.create_batch(101, organization=organization)

    default = as_clinician.get(LIST_URL).json()
    capped = as_clinician.get(f"{LIST_URL}?page_size=500").json()

    assert (default["count"], len(default["results"])) == (101, 20)
    assert len(capped["results"]) == 100


@pytest.mark.parametrize("page", ["99", "abc", "0"])
def test_a_page_out_of_range_is_not_found(
    as_clinician: APIClient, people: dict[str, Patient], page: str
) -> None:
    response = as_clinician.get(f"{LIST_URL}?page={page}")

    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("age_min=abc", "age_min"),
        ("age_max=1.5", "age_max"),
        ("age_min=-1", "age_min"),
        ("age_max=151", "age_max"),
        ("age_min=60&age_max=20", "age_max"),
        ("gender=X", "gender"),
        ("gender=male", "gender"),
        ("ordering=foo", "ordering"),
        ("ordering=-created_at,bogus", "ordering"),
        ("ordering=date_of_birth", "ordering"),
        ("search=" + "x" * 101, "search"),
    ],
)
def test_invalid_parameters_are_refused_not_ignored(
    as_clinician: APIClient, query: str, field: str
) -> None:
    response = as_clinician.get(f"{LIST_URL}?{query}")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert list(error_details(response)) == [field]
