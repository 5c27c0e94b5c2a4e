"""GET /patients/search/?q=: ranked search over name, MRN, email and phone."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import Case, FloatField, Q, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, User
from patient.filters import years_before
from patient.models import Gender, Patient
from patient.search import (
    NameContainsAny,
    NameRank,
    exact_identifier_condition,
    indexed_upper,
    nearest_names,
    ranked_search,
    substring_condition,
    transpositions,
)
from patient.selectors import patient_list
from pms import pagination
from tests.factories import PatientFactory
from tests.patient.conftest import SEARCH_URL, error_code, error_details, ids


@pytest.fixture
def people(organization: Organization) -> dict[str, Patient]:
    def make(name: str, gender: str, age: int, **extra: str) -> Patient:
        born = years_before(timezone.localdate(), age) - timedelta(days=30)
        return PatientFactory.create(
            organization=organization, full_name=name, gender=gender, date_of_birth=born, **extra
        )

    return {
        "john": make("John Doe", Gender.MALE, 40),
        "jane": make("Jane Roe", Gender.FEMALE, 35),
        "johnny": make("Johnny Cash", Gender.MALE, 16),
        "smith": make("Anna Smith", Gender.FEMALE, 60, mrn="MRN-4242"),
        "mary": make("Mary Major", Gender.FEMALE, 50, email="john.major@example.com"),
        "walter": make("Walter White", Gender.MALE, 52, phone="+12025550199"),
    }


def search(client: APIClient, query: str) -> list[int]:
    response = client.get(f"{SEARCH_URL}?{query}")
    assert response.status_code == 200, response.json()
    return ids(response)


def every_page(client: APIClient, query: str, *, size: int, most: int) -> list[int]:
    """The ids of a search's pages in order, following them until `next` is null (at most
    `most` pages)."""
    seen: list[int] = []
    for page in range(1, most + 1):
        response = client.get(f"{SEARCH_URL}?{query}&page_size={size}&page={page}")
        assert response.status_code == 200
        seen += ids(response)
        if response.json()["next"] is None:
            break
    return seen


def test_the_issue_example_answers_as_described(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    # Johnny is 16 and Mary (matched by email) is female: only John remains.
    assert search(as_clinician, "q=john&age_min=18&gender=M") == [people["john"].pk]


def test_an_exact_name_match_ranks_first(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    result = search(as_clinician, "q=john doe")

    assert result[0] == people["john"].pk


@pytest.mark.parametrize(
    ("q", "key"),
    [("MRN-4242", "smith"), ("mrn-4242", "smith"), ("john.major@example.com", "mary")],
)
def test_an_exact_identifier_ranks_first(
    as_clinician: APIClient, people: dict[str, Patient], q: str, key: str
) -> None:
    assert search(as_clinician, f"q={q}")[0] == people[key].pk


@pytest.mark.parametrize(
    ("q", "key"),
    [("smith", "smith"), ("4242", "smith"), ("major@", "mary"), ("555-0199", "walter")],
)
def test_substrings_of_name_mrn_email_and_phone_are_found(
    as_clinician: APIClient, people: dict[str, Patient], q: str, key: str
) -> None:
    assert people[key].pk in search(as_clinician, f"q={q}")


def test_results_are_filtered_by_gender_and_age_range(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    result = search(as_clinician, "q=john&gender=F&age_min=40&age_max=55")

    assert result == [people["mary"].pk]


def test_results_are_paginated_like_the_list(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    body = as_clinician.get(f"{SEARCH_URL}?q=john&page_size=1&page=2").json()

    assert body["count"] == len(search(as_clinician, "q=john"))
    assert body["count"] >= 3
    assert len(body["results"]) == 1
    assert body["previous"] is not None


def test_nothing_matching_is_an_empty_page(
    as_clinician: APIClient, people: dict[str, Patient]
) -> None:
    body = as_clinician.get(f"{SEARCH_URL}?q=zzzzqqq").json()

    assert (body["count"], body["results"]) == (0, [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "q"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=j", "q"),
        ("q=" + "x" * 101, "q"),
        ("q=john&gender=X", "gender"),
        ("q=john&age_min=abc", "age_min"),
        ("q=john&age_min=50&age_max=10", "age_max"),
    ],
)
def test_invalid_search_parameters_are_refused(
    as_clinician: APIClient, query: str, field: str
) -> None:
    response = as_clinician.get(f"{SEARCH_URL}?{query}")

    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert field in error_details(response)


def test_transpositions_swap_each_adjacent_pair_of_letters() -> None:
    assert transpositions("JHON") == ["HJON", "JOHN", "JHNO"]
    assert transpositions("AA B") == []
    assert transpositions("X" * 17 + "Y") == []


@pytest.mark.usefixtures("postgres_only")
class TestTypoTolerantSearchOnPostgreSQL:
    @pytest.mark.parametrize(
        ("q", "key"),
        [
            ("jhon", "john"),
            ("jon doe", "john"),
            ("john deo", "john"),
            ("smiht", "smith"),
            ("wolter white", "walter"),
            ("wlater white", "walter"),
            ("jonny cash", "johnny"),
        ],
    )
    def test_a_misspelled_name_finds_the_patient_first(
        self, as_clinician: APIClient, people: dict[str, Patient], q: str, key: str
    ) -> None:
        result = search(as_clinician, f"q={q}")

        assert result[0] == people[key].pk

    def test_best_matches_come_first(
        self, as_clinician: APIClient, people: dict[str, Patient]
    ) -> None:
        result = search(as_clinician, "q=john")

        # A whole word, then a word it begins ("Johnny"), then an email containing it.
        assert result == [people["john"].pk, people["johnny"].pk, people["mary"].pk]

    def test_unrelated_names_are_not_returned(
        self, as_clinician: APIClient, people: dict[str, Patient]
    ) -> None:
        result = search(as_clinician, "q=jhon")

        assert people["walter"].pk not in result
        assert people["smith"].pk not in result

    def test_the_similarity_threshold_comes_from_the_setting(self, db: None) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SHOW pg_trgm.word_similarity_threshold")
            assert float(cursor.fetchone()[0]) == pytest.approx(0.4)

    def test_a_lower_threshold_also_finds_a_letter_changed_in_a_short_name(
        self, as_clinician: APIClient, people: dict[str, Patient]
    ) -> None:
        # "smyth" is 0.33 similar to "smith": below the default, found at 0.3 (docs/performance.md).
        assert people["smith"].pk not in search(as_clinician, "q=smyth")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pg_trgm.word_similarity_threshold = 0.3")

        assert search(as_clinician, "q=smyth")[0] == people["smith"].pk


@pytest.mark.usefixtures("postgres_only")
class TestRankNodesOnPostgreSQL:
    """`NameRank` and `NameContainsAny` write by hand what Django's expressions would: they
    must give what those give, row by row."""

    @pytest.fixture
    def rows(self, organization: Organization, people: dict[str, Patient]) -> None:
        for name in ("Jhon Doe", "Ojhn Smith", "Dr. 50%_a\\b Jones", "Maria Jhonson"):
            PatientFactory.create(organization=organization, full_name=name)

    @pytest.mark.parametrize("term", ["jhon", "smiht", "wlater white", "50%_a\\b", "o_n", "jo%"])
    def test_the_rank_is_the_one_djangos_expressions_compute(self, rows: None, term: str) -> None:
        name = indexed_upper("full_name")
        needle = term.upper()
        spellings = transpositions(needle)
        identifier = Case(
            When(exact_identifier_condition(term), then=Value(1.0)),
            When(substring_condition(term), then=Value(0.5)),
            default=Value(0.0),
            output_field=FloatField(),
        )
        stock = Greatest(
            TrigramWordSimilarity(needle, name),
            *(
                Case(
                    When(full_name__icontains=s, then=TrigramWordSimilarity(s, name) * 0.9),
                    default=Value(0.0),
                    output_field=FloatField(),
                )
                for s in spellings
            ),
            identifier,
            output_field=FloatField(),
        )
        ranks = Patient.objects.annotate(
            ours=NameRank(name, needle, spellings, identifier), stock=stock
        ).values_list("ours", "stock")

        assert len(ranks) == 10
        assert all(ours == pytest.approx(theirs) for ours, theirs in ranks)
        assert any(ours > 0.5 for ours, _ in ranks) or term in {"o_n", "jo%"}

    @pytest.mark.parametrize(
        ("spellings", "found"),
        [
            (["JOHN"], True),
            (["HJON", "JOHN", "JHNO"], True),
            (["50%_A\\B"], True),
            # A wildcard of LIKE is matched as itself: "O_N" is not "OHN" of John.
            (["O_N"], False),
        ],
    )
    def test_name_contains_any_is_the_or_of_icontains(
        self, rows: None, spellings: list[str], found: bool
    ) -> None:
        stock = Q()
        for spelling in spellings:
            stock |= Q(full_name__icontains=spelling)

        ours = set(Patient.objects.filter(NameContainsAny(spellings)).values_list("pk", flat=True))

        assert ours == set(Patient.objects.filter(stock).values_list("pk", flat=True))
        assert bool(ours) is found


@pytest.mark.usefixtures("postgres_only")
class TestNearestNamesOnPostgreSQL:
    """A common name's page is ranked among the nearest names (patient/search.py,
    `nearest_names`), and is the page the full ranking gives."""

    @pytest.fixture
    def marias(self, organization: Organization) -> dict[str, Any]:
        make = PatientFactory.create
        return {
            # The exact MRN ranks 1.0, as a whole-word Maria does, and first of them by id;
            # its name is nowhere near the term.
            "mrn": make(organization=organization, full_name="Yan Other", mrn="MARIA"),
            "marias": [make(organization=organization, full_name=f"Maria Q{n}") for n in range(30)],
            # Near, and not a whole-word match: "Mariana" ranks below every "Maria".
            "mariana": make(organization=organization, full_name="Mariana Lopez"),
            # Matched by the email's substring only: last.
            "email": make(
                organization=organization, full_name="Zed Other", email="maria@example.com"
            ),
            # Another clinic's Maria is never seen.
            "elsewhere": make(full_name="Maria Elsewhere"),
        }

    def ranking(self, clinician: User, term: str) -> list[int]:
        ranked = ranked_search(patient_list(user=clinician), term)
        return list(ranked.values_list("pk", flat=True))

    def test_the_pages_of_a_common_name_are_the_full_ranking_cut_in_pages(
        self, as_clinician: APIClient, clinician: User, marias: dict[str, Any]
    ) -> None:
        expected = self.ranking(clinician, "maria")
        seen = every_page(as_clinician, "q=maria", size=4, most=11)

        assert seen == expected
        assert expected[:31] == [marias["mrn"].pk] + [row.pk for row in marias["marias"]]
        assert expected[31:] == [marias["mariana"].pk, marias["email"].pk]
        assert marias["elsewhere"].pk not in seen

    def test_the_page_is_read_from_the_nearest_names_when_they_prove_it(
        self, clinician: User, marias: dict[str, Any]
    ) -> None:
        ranked = ranked_search(patient_list(user=clinician), "maria")

        narrowed = nearest_names(ranked, depth=21)
        assert narrowed is not None
        # The 21 nearest Marias and the exact MRN: nothing else is ranked.
        assert set(narrowed.values_list("pk", flat=True)) == {marias["mrn"].pk} | {
            row.pk for row in marias["marias"][:21]
        }
        assert (
            list(narrowed.values_list("pk", flat=True)[:21])
            == self.ranking(clinician, "maria")[:21]
        )
        # The 30 whole-word Marias are every name similar above 0.9; with the MRN they are the
        # first 31 results (no transposed spelling is a name here), and past them nothing is
        # proven.
        assert nearest_names(ranked, depth=31) is not None
        assert nearest_names(ranked, depth=32) is None

    def test_the_nearest_names_keep_the_other_filters_and_leave_out_the_archived(
        self, as_clinician: APIClient, clinician: User, marias: dict[str, Any]
    ) -> None:
        for row in marias["marias"][:5]:
            row.gender = Gender.MALE
            row.save()
        archived = [
            PatientFactory.create(
                organization=marias["mrn"].organization, full_name="Maria Gone", is_active=False
            ),
            # An exact identifier, which the narrowed rows take beside the nearest names.
            PatientFactory.create(
                organization=marias["mrn"].organization, email="MARIA", is_active=False
            ),
        ]
        searched = patient_list(user=clinician).filter(gender=Gender.MALE)

        narrowed = nearest_names(ranked_search(searched, "maria"), depth=5)
        assert narrowed is not None
        assert set(narrowed.values_list("pk", flat=True)) == {
            row.pk for row in marias["marias"][:5]
        }
        # The candidates' trigram conditions are not sent again, only the searched rows'.
        assert "%>" not in str(narrowed.query)
        response = as_clinician.get(f"{SEARCH_URL}?q=maria&page_size=3")
        assert not {row.pk for row in archived} & set(ids(response))

    def test_too_few_near_names_leave_the_page_to_the_full_ranking(
        self, clinician: User, people: dict[str, Patient]
    ) -> None:
        ranked = ranked_search(patient_list(user=clinician), "jhon")

        assert nearest_names(ranked, depth=2) is None

    def test_the_threshold_is_as_it_was_after_the_nearest_names(
        self, as_clinician: APIClient, marias: dict[str, Any]
    ) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pg_trgm.word_similarity_threshold = 0.35")

        assert as_clinician.get(f"{SEARCH_URL}?q=maria&page_size=5").status_code == 200
        with connection.cursor() as cursor:
            cursor.execute("SHOW pg_trgm.word_similarity_threshold")
            assert float(cursor.fetchone()[0]) == pytest.approx(0.35)

    def test_a_common_name_costs_a_constant_number_of_queries(
        self,
        as_clinician: APIClient,
        marias: dict[str, Any],
        django_assert_num_queries: Any,
        bounded_queries: int,
    ) -> None:
        # 1-3. the nearest names (their threshold, their read, the threshold set back), 4. the
        # capped count of the candidates but the fuzzy ones, under the cap here, so 5. that of
        # every candidate, 6. the page ranked among the nearest names, 7. the audit INSERT;
        # and the statement timeout's (bounded_queries).
        for size in (1, 10):
            with django_assert_num_queries(7 + bounded_queries):
                response = as_clinician.get(f"{SEARCH_URL}?q=maria&page_size={size}")
            assert len(ids(response)) == size

    def test_the_count_takes_in_the_fuzzy_candidates_under_the_cap(
        self, as_clinician: APIClient, clinician: User, marias: dict[str, Any]
    ) -> None:
        # Similar to "maria" (0.67) without containing it: a candidate only by the fuzzy match.
        marie = PatientFactory.create(
            organization=marias["mrn"].organization, full_name="Marie Curie"
        )
        expected = self.ranking(clinician, "maria")
        assert marie.pk in expected

        response = as_clinician.get(f"{SEARCH_URL}?q=maria&page_size=5")
        assert response.json()["count"] == len(expected)
        assert response["X-Count-Exact"] == "true"

    def test_past_the_cap_without_the_fuzzy_candidates_the_count_stops_there(
        self,
        as_clinician: APIClient,
        clinician: User,
        marias: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch,
        django_assert_num_queries: Any,
        bounded_queries: int,
    ) -> None:
        monkeypatch.setattr(pagination, "COUNT_LIMIT", 10)
        # As above, but 4. passes the cap: no count of every candidate.
        with django_assert_num_queries(6 + bounded_queries):
            response = as_clinician.get(f"{SEARCH_URL}?q=maria&page_size=5")

        assert response.json()["count"] == 10
        assert response["X-Count-Exact"] == "false"
        assert ids(response) == self.ranking(clinician, "maria")[:5]


@pytest.mark.usefixtures("postgres_only")
class TestTransposedSpellingsOnPostgreSQL:
    """A short typo's page is ranked among its transposed spellings' whole-word names when its
    own nearest names are too few (patient/search.py, `_proven_by_spellings`): `mray` is
    near no name, and its spelling `MARY` is a whole word of the Marys."""

    @pytest.fixture
    def marys(self, organization: Organization) -> dict[str, Any]:
        make = PatientFactory.create
        return {
            # First, so the smallest ids: whole-word MARYs to the index (the trigrams of
            # "zachary mar..." hold every trigram of "mary" in one run), which rank low.
            "traps": [
                make(organization=organization, full_name=f"Zachary Mar{rest}")
                for rest in ("tinez", "sh", "k")
            ],
            "marys": [make(organization=organization, full_name=f"Mary Q{n}") for n in range(10)],
            # Contains MARY, not as a word: ranks 0.9 x 0.6.
            "rosemary": make(organization=organization, full_name="Rosemary Lane"),
            # The exact MRN ranks 1.0, first.
            "mrn": make(organization=organization, full_name="Yan Other", mrn="MRAY"),
            "elsewhere": make(full_name="Mary Elsewhere"),
        }

    def ranking(self, searched: Any, term: str) -> list[int]:
        return list(ranked_search(searched, term).values_list("pk", flat=True))

    def test_the_page_is_read_from_the_spellings_when_they_prove_it(
        self, clinician: User, marys: dict[str, Any]
    ) -> None:
        searched = patient_list(user=clinician)
        ranked = ranked_search(searched, "mray")

        narrowed = nearest_names(ranked, depth=5)
        assert narrowed is not None
        first = list(narrowed.values_list("pk", flat=True)[:5])
        assert first == self.ranking(searched, "mray")[:5]
        assert first == [marys["mrn"].pk] + [row.pk for row in marys["marys"][:4]]
        # Ten Marys and the MRN are ahead of anything the walks left out: eleven results are
        # proven, a twelfth is not.
        assert nearest_names(ranked, depth=11) is not None
        assert nearest_names(ranked, depth=12) is None

    def test_names_that_only_look_like_the_spelling_can_undo_the_proof(
        self, clinician: User, marys: dict[str, Any]
    ) -> None:
        # Without the MRN, a walk cut at 4 rows holds the three traps and one Mary: one row is
        # proven ahead of a Mary past the cut, not two.
        searched = patient_list(user=clinician).exclude(pk=marys["mrn"].pk)
        ranked = ranked_search(searched, "mray")

        assert nearest_names(ranked, depth=2) is None
        narrowed = nearest_names(ranked, depth=3)
        assert narrowed is not None
        assert list(narrowed.values_list("pk", flat=True)[:3]) == [
            row.pk for row in marys["marys"][:3]
        ]

    @pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
    def test_the_pages_are_the_full_ranking_cut_in_pages(
        self, as_clinician: APIClient, clinician: User, marys: dict[str, Any], size: int
    ) -> None:
        expected = self.ranking(patient_list(user=clinician), "mray")
        seen = every_page(as_clinician, "q=mray", size=size, most=19)

        assert seen == expected
        assert marys["elsewhere"].pk not in seen
        assert marys["rosemary"].pk in seen

    def test_a_term_with_more_spellings_is_not_walked(
        self, organization: Organization, clinician: User
    ) -> None:
        for n in range(5):
            PatientFactory.create(organization=organization, full_name=f"Marian Q{n}")
        # "mraian" has five transposed spellings, MARIAN among them.
        assert len(transpositions("MRAIAN")) == 5

        assert nearest_names(ranked_search(patient_list(user=clinician), "mraian"), depth=2) is None

    def test_a_proven_typo_costs_a_constant_number_of_queries(
        self,
        as_clinician: APIClient,
        marys: dict[str, Any],
        django_assert_num_queries: Any,
        bounded_queries: int,
    ) -> None:
        # 1. the threshold, 2. the nearest names, 3. the spellings' walks, 4. the threshold set
        # back, 5. the ranks of the rows they found, 6-7. the capped counts of the candidates
        # but the fuzzy ones and of every candidate, 8. the page ranked among those rows, 9. the
        # audit INSERT; and the statement timeout's (bounded_queries).
        for size in (1, 10):
            with django_assert_num_queries(9 + bounded_queries):
                response = as_clinician.get(f"{SEARCH_URL}?q=mray&page_size={size}")
            assert len(ids(response)) == size
