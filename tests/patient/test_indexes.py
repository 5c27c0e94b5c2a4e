"""PostgreSQL: the indexes match the SQL the API actually runs (checked with EXPLAIN).

The tables here are small, so the planner is steered off sequential scans and sorts; what is
checked is that each index *can* serve its query, i.e. that index and query expressions agree.
"""

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q

from accounts.models import Organization, User
from patient.duplicates import Identity, candidate_condition
from patient.filters import PatientFilterSet, PatientSearchFilterSet
from patient.models import Patient
from patient.search import indexed_upper, nearest_names_query, search_condition, word_similar
from patient.selectors import patient_list
from tests.factories import PatientFactory

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def planner(postgres_only: None, organization: Organization) -> None:
    PatientFactory.create_batch(50, organization=organization)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE patient_patient")
        cursor.execute("SET LOCAL enable_seqscan = off")


@pytest.fixture
def presorted(planner: None) -> None:
    """Orderings must come from an index, not a sort."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")


def plan(queryset: Any) -> str:
    return str(queryset.explain())


@pytest.mark.usefixtures("planner")
@pytest.mark.parametrize(
    ("field", "term"),
    [("full_name", "john"), ("email", "example"), ("mrn", "T-00"), ("phone", "2025")],
)
def test_each_searched_column_has_a_trigram_index_on_the_icontains_expression(
    field: str, term: str
) -> None:
    queryset = Patient.objects.filter(**{f"{field}__icontains": term})

    assert f'UPPER("patient_patient"."{field}"::text) LIKE UPPER(' in str(queryset.query)
    assert f"Bitmap Index Scan on patient_org_{field}_trgm_idx" in plan(queryset)


@pytest.mark.usefixtures("planner")
def test_the_search_parameter_is_served_by_the_trigram_indexes() -> None:
    queryset = Patient.objects.filter(search_condition("(202) 555"))

    explained = plan(queryset)
    for field in ("full_name", "email", "mrn", "phone"):
        assert f"patient_org_{field}_trgm_idx" in explained


@pytest.mark.parametrize("field", ["full_name", "email", "phone", "mrn"])
def test_each_trigram_index_is_led_by_the_organization(db: None, field: str) -> None:
    # Migration patient 0008: a clinic's search reads only its own trigrams (the plans above
    # show the expression is served; on these few rows the planner prefers the btrees for the
    # clinic, so the leading column is checked in the definition).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            [f"patient_org_{field}_trgm_idx"],
        )
        (definition,) = cursor.fetchone()

    assert f"USING gin (organization_id, upper(({field})::text) gin_trgm_ops)" in definition


@pytest.mark.usefixtures("planner")
def test_the_fuzzy_name_match_is_served_by_the_name_trigram_index() -> None:
    queryset = Patient.objects.filter(word_similar(indexed_upper("full_name"), "JHON"))

    assert "Bitmap Index Scan on patient_org_full_name_trgm_idx" in plan(queryset)


@pytest.mark.usefixtures("planner")
def test_the_ranked_search_reaches_the_trigram_indexes() -> None:
    queryset = PatientSearchFilterSet({"q": "jhon"}, queryset=Patient.objects.all()).qs

    explained = plan(queryset)
    assert "patient_org_full_name_trgm_idx" in explained
    assert "patient_org_mrn_trgm_idx" in explained
    # The term of the fuzzy match is an InitPlan's output, not a constant the planner would
    # estimate the condition from, and the index serves it all the same.
    assert re.search(r"Index Cond: \(.*%> \$\d+\)", explained), explained


@pytest.mark.usefixtures("presorted")
def test_the_nearest_names_walk_the_organization_led_gist_index(clinician: User) -> None:
    # The scope is sent as a bigint (pms/scoping.py): as an integer, btree_gist's column
    # would not serve it and the walk would cross every clinic's names.
    explained = plan(nearest_names_query(patient_list(user=clinician), "MARIA", 21))

    assert "Index Scan using patient_org_name_gist_idx on patient_patient" in explained
    assert "Index Cond: ((organization_id = " in explained
    assert "Order By: " in explained
    assert "Sort" not in explained


@pytest.mark.usefixtures("presorted")
@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({}, "patient_org_created_idx"),
        ({"ordering": "created_at"}, "patient_org_created_idx"),
        ({"ordering": "-updated_at"}, "patient_org_updated_idx"),
        ({"ordering": "full_name"}, "patient_org_name_idx"),
        ({"ordering": "-full_name"}, "patient_org_name_idx"),
        ({"ordering": "age"}, "patient_org_dob_idx"),
        ({"ordering": "-age"}, "patient_org_dob_idx"),
        ({"ordering": "mrn"}, "patient_org_mrn_idx"),
        ({"gender": "F"}, "patient_org_gender_idx"),
        ({"gender": "M", "ordering": "-created_at"}, "patient_org_gender_idx"),
        ({"age_min": "18", "age_max": "65", "ordering": "age"}, "patient_org_dob_idx"),
    ],
)
def test_each_ordering_and_filter_has_an_organization_led_btree(
    clinician: User, params: dict[str, str], index: str
) -> None:
    queryset = PatientFilterSet(params, queryset=patient_list(user=clinician)).qs[:20]

    explained = plan(queryset)
    assert f"using {index} on patient_patient" in explained
    assert "Index Cond: ((organization_id = " in explained
    assert "Sort" not in explained


def test_the_fuzzy_match_is_written_against_the_icontains_expression() -> None:
    compiled = str(Patient.objects.filter(Q(full_name__icontains="x")).query)
    own = str(Patient.objects.filter(word_similar(indexed_upper("full_name"), "X")).query)

    # The same expression up to PostgreSQL's own parenthesizing, so one index serves both.
    assert 'UPPER("patient_patient"."full_name"::text) LIKE' in compiled
    assert 'UPPER(("patient_patient"."full_name")::text) %> X' in own


@pytest.mark.usefixtures("planner")
def test_a_former_mrn_in_the_search_keeps_every_index_in_use() -> None:
    explained = plan(Patient.objects.filter(search_condition("OLD-7")))

    assert "patient_alias_mrn_idx" in explained
    assert "Seq Scan on patient_patient" not in explained


@pytest.fixture
def clinic_of_thousands(organization: Organization) -> None:
    """Enough rows that the planner picks each branch's own index, as on a real clinic (on a
    few dozen it reads the clinic's rows in one go, which is right for them)."""
    Patient.objects.bulk_create(
        Patient(
            organization=organization,
            mrn=f"B-{number}",
            full_name=f"Person{number % 300} Family{number % 700}",
            email=f"p{number}@example.com",
            phone=f"+1202{number:07d}",
            date_of_birth=date(1930, 1, 1) + timedelta(days=number * 7 % 30000),
        )
        for number in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE patient_patient")


@pytest.mark.usefixtures("clinic_of_thousands")
@pytest.mark.parametrize("estimated", [False, True])
def test_every_branch_of_the_duplicate_check_is_served_by_an_index(
    organization: Organization, estimated: bool
) -> None:
    new = Identity(
        full_name="John Smith",
        date_of_birth=date(1980, 1, 1) if estimated else date(1980, 3, 4),
        birth_date_estimated=estimated,
        email="john@example.com",
        phone="+12025550100",
        mrn="X-1",
    )
    patients = Patient.objects.filter(organization=organization, is_active=True)

    explained = plan(patients.filter(candidate_condition(patients, new)))

    # The name's trigram index joins the estimated-year branch (a BitmapAnd) once that span
    # holds enough rows to pay for it; here the birth-date index alone narrows it well.
    assert "BitmapOr" in explained
    for index in (
        "patient_mrn_unique_per_org",
        "patient_org_email_upper_idx",
        "patient_org_phone_idx",
        "patient_org_dob_idx",
    ):
        assert index in explained
    assert "Seq Scan" not in explained
