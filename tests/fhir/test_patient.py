"""FHIR Patient: the mapping, read, and every search parameter alone and combined."""

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from patient.models import Patient
from pms import pagination
from tests.factories import PatientFactory
from tests.fhir.conftest import FHIR_JSON, fhir_get, validate


def ids(bundle):
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


@pytest.fixture
def people(organization, other_organization):
    """Known patients of one clinic, and a namesake in another clinic that no search finds."""
    rows = {
        "jane": PatientFactory.create(
            organization=organization,
            mrn="MRN-1",
            full_name="Jane Doe",
            gender="F",
            date_of_birth=date(1980, 5, 17),
        ),
        "john": PatientFactory.create(
            organization=organization,
            mrn="MRN-2",
            full_name="John Smith",
            gender="M",
            date_of_birth=date(1975, 1, 2),
        ),
        "ana": PatientFactory.create(
            organization=organization,
            mrn="MRN-3",
            full_name="Smith, Ana Maria",
            gender="F",
            date_of_birth=date(1990, 12, 31),
        ),
        "sam": PatientFactory.create(
            organization=organization,
            mrn="MRN-4",
            full_name="Sam Doevski",
            gender="O",
            date_of_birth=date(1980, 1, 1),
        ),
        "foreign": PatientFactory.create(
            organization=other_organization,
            mrn="MRN-1",
            full_name="Jane Doe",
            gender="F",
            date_of_birth=date(1980, 5, 17),
        ),
    }
    return {name: str(patient.pk) for name, patient in rows.items()}


def test_the_patient_maps_every_field(as_clinician, organization):
    patient = PatientFactory.create(
        organization=organization,
        mrn="A-17",
        full_name="Jane Q Doe",
        email="jane@example.org",
        phone="+12025550143",
        gender="F",
        date_of_birth=date(1980, 5, 17),
        address="1 Main St\nSpringfield",
    )

    response = fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    assert response["ETag"] == 'W/"1"'
    body = response.json()
    assert body["identifier"][0]["system"] == "urn:pms:northside:mrn"
    assert body["identifier"][0]["value"] == "A-17"
    assert body["name"] == [
        {"use": "official", "text": "Jane Q Doe", "family": "Doe", "given": ["Jane", "Q"]}
    ]
    assert body["telecom"] == [
        {"system": "email", "value": "jane@example.org"},
        {"system": "phone", "value": "+12025550143"},
    ]
    assert (body["gender"], body["birthDate"], body["active"]) == ("female", "1980-05-17", True)
    assert body["address"] == [{"text": "1 Main St\nSpringfield"}]
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert "link" not in body


@pytest.mark.parametrize(
    ("full_name", "family", "given"),
    [("Doe, Jane Ann", "Doe", ["Jane", "Ann"]), ("Cher", None, None), ("Ann Lee", "Lee", ["Ann"])],
)
def test_names_are_parsed_when_they_split_plainly(
    as_clinician, organization, full_name, family, given
):
    patient = PatientFactory.create(organization=organization, full_name=full_name)

    name = fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}").json()["name"][0]

    assert (name["text"], name.get("family"), name.get("given")) == (full_name, family, given)


def test_an_estimated_birth_date_is_only_its_year(as_clinician, organization):
    patient = PatientFactory.create(
        organization=organization, date_of_birth=date(1961, 1, 1), birth_date_estimated=True
    )

    body = fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}").json()

    assert body["birthDate"] == "1961"


def test_the_etag_follows_the_version(as_clinician, organization):
    patient = PatientFactory.create(organization=organization)
    patient.notes = "changed"
    patient.save()

    response = fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}")

    assert response["ETag"] == 'W/"2"'
    assert response.json()["meta"]["versionId"] == "2"


@pytest.mark.skipif(
    not hasattr(Patient, "merged_into_id"), reason="Patient.merged_into is not on this branch yet"
)
def test_a_merged_patient_links_to_the_survivor(as_admin, organization):
    survivor = PatientFactory.create(organization=organization)
    merged = PatientFactory.create(organization=organization, merged_into=survivor)

    body = fhir_get(as_admin, f"/fhir/R4/Patient/{merged.pk}").json()

    assert body["link"] == [
        {"other": {"reference": f"Patient/{survivor.pk}"}, "type": "replaced-by"}
    ]


def test_the_mapper_links_a_merged_patient_by_its_merged_into_id(organization):
    # The field is added by the identity work; the mapper reads it when present.
    from fhir.mappers import patient_resource

    patient = PatientFactory.build(organization=organization, pk=7, updated_at=timezone.now())
    patient.merged_into_id = 3

    resource = patient_resource(patient, organization_slug="northside")

    validate(resource)
    assert resource["link"] == [{"other": {"reference": "Patient/3"}, "type": "replaced-by"}]


def test_an_archived_patient_is_gone(as_clinician, organization):
    patient = PatientFactory.create(organization=organization, is_active=False)

    response = fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}")

    assert response.status_code == 410
    assert response.json()["issue"][0]["code"] == "deleted"
    event = AuditEvent.objects.get(action="patient.fhir_read")
    assert (event.status_code, event.patient_ids) == (410, [patient.pk])


def test_another_clinics_patient_is_not_found_even_archived(as_clinician, other_organization):
    archived = PatientFactory.create(organization=other_organization, is_active=False)
    active = PatientFactory.create(organization=other_organization)

    for patient in (archived, active):
        response = fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"


def test_a_read_is_audited_with_its_patient(as_clinician, organization):
    patient = PatientFactory.create(organization=organization)

    fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}")

    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.patient_ids) == (
        "patient.fhir_read",
        "patient",
        [patient.pk],
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"identifier": "urn:pms:northside:mrn|MRN-1"}, {"jane"}),
        ({"identifier": "MRN-2"}, {"john"}),
        ({"identifier": "urn:pms:southside:mrn|MRN-1"}, set()),
        ({"identifier": "urn:other|MRN-1"}, set()),
        ({"identifier": "urn:pms:northside:mrn|"}, {"jane", "john", "ana", "sam"}),
        ({"identifier": "MRN-1,MRN-3"}, {"jane", "ana"}),
        ({"name": "doe"}, {"jane", "sam"}),
        ({"name": "ana"}, {"ana"}),
        ({"name": "mit"}, set()),
        ({"family": "smith"}, {"john", "ana"}),
        ({"family": "doe"}, {"jane", "sam"}),
        ({"family": "jane"}, set()),
        ({"given": "jan"}, {"jane"}),
        ({"given": "maria"}, {"ana"}),
        ({"given": "smith"}, set()),
        ({"birthdate": "1980-05-17"}, {"jane"}),
        ({"birthdate": "1980"}, {"jane", "sam"}),
        ({"birthdate": "1980-05"}, {"jane"}),
        ({"birthdate": "ge1980-01-01"}, {"jane", "ana", "sam"}),
        ({"birthdate": "gt1980"}, {"ana"}),
        ({"birthdate": "le1980-01-01"}, {"john", "sam"}),
        ({"birthdate": "lt1980"}, {"john"}),
        ({"gender": "female"}, {"jane", "ana"}),
        ({"gender": "http://hl7.org/fhir/administrative-gender|male"}, {"john"}),
        ({"gender": "other,male"}, {"sam", "john"}),
        ({"gender": "unknown"}, set()),
        ({"gender": "female", "birthdate": "1980"}, {"jane"}),
        ({"family": "smith", "gender": "female", "birthdate": "ge1990"}, {"ana"}),
        ({"name": "doe", "identifier": "MRN-4"}, {"sam"}),
    ],
)
def test_each_search_parameter_alone_and_combined(as_clinician, people, query, expected):
    response = fhir_get(as_clinician, "/fhir/R4/Patient", query)

    assert response.status_code == 200, response.content
    bundle = response.json()
    assert (bundle["type"], bundle["total"]) == ("searchset", len(expected))
    assert set(ids(bundle)) == {people[name] for name in expected}


def test_repeated_parameters_are_anded(as_clinician, people):
    response = fhir_get(
        as_clinician, "/fhir/R4/Patient?birthdate=ge1975-06-01&birthdate=le1980-12-31"
    )

    assert set(ids(response.json())) == {people["jane"], people["sam"]}


def test_last_updated_filters_on_the_change_time(as_clinician, people):
    Patient.objects.filter(pk=people["john"]).update(updated_at=datetime(2020, 3, 1, tzinfo=UTC))

    older = fhir_get(as_clinician, "/fhir/R4/Patient", {"_lastUpdated": "lt2021"}).json()
    newer = fhir_get(
        as_clinician, "/fhir/R4/Patient", {"_lastUpdated": "ge2021-01-01T00:00:00Z"}
    ).json()

    assert ids(older) == [people["john"]]
    assert set(ids(newer)) == {people["jane"], people["ana"], people["sam"]}


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("birthdate", ["john", "sam", "jane", "ana"]),
        ("-birthdate", ["ana", "jane", "sam", "john"]),
        ("identifier", ["jane", "john", "ana", "sam"]),
        ("-_lastUpdated", ["sam", "ana", "john", "jane"]),
        ("name", ["jane", "john", "sam", "ana"]),
    ],
)
def test_sort_orders_the_results(as_clinician, people, sort, order):
    bundle = fhir_get(as_clinician, "/fhir/R4/Patient", {"_sort": sort}).json()

    assert ids(bundle) == [people[name] for name in order]


@pytest.mark.parametrize(
    "query",
    [
        {"birthdate": "1980-13-01"},
        {"birthdate": "ne1980"},
        {"birthdate": "yesterday"},
        {"gender": "f"},
        {"_sort": "address"},
        {"_count": "0"},
        {"_count": "many"},
        {"name": ""},
        {"nickname": "jd"},
        {"name:exact": "Jane Doe"},
    ],
)
def test_a_bad_or_unknown_parameter_is_a_400_outcome(as_clinician, people, query):
    response = fhir_get(as_clinician, "/fhir/R4/Patient", query)

    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "invalid"
    assert outcome["issue"][0]["expression"] == [next(iter(query))]
    assert "1980" not in outcome["issue"][0]["diagnostics"]  # values are not echoed


def test_lenient_handling_ignores_unknown_parameters_and_drops_them_from_links(
    as_clinician, people
):
    response = fhir_get(
        as_clinician,
        "/fhir/R4/Patient",
        {"nickname": "jd", "gender": "female"},
        HTTP_PREFER="handling=lenient",
    )

    bundle = response.json()
    assert set(ids(bundle)) == {people["jane"], people["ana"]}
    assert bundle["link"] == [
        {"relation": "self", "url": "http://testserver/fhir/R4/Patient?gender=female"}
    ]


def test_pages_link_to_each_other_within_the_rest_limits(as_clinician, organization, monkeypatch):
    PatientFactory.create_batch(5, organization=organization)
    url = "http://testserver/fhir/R4/Patient"

    first = fhir_get(as_clinician, "/fhir/R4/Patient", {"_count": 2, "_sort": "_id"}).json()
    second = fhir_get(
        as_clinician, "/fhir/R4/Patient", {"_count": 2, "_sort": "_id", "_page": 2}
    ).json()
    last = fhir_get(
        as_clinician, "/fhir/R4/Patient", {"_count": 2, "_sort": "_id", "_page": 3}
    ).json()

    assert first["total"] == 5
    assert {link["relation"]: link["url"] for link in first["link"]} == {
        "self": f"{url}?_count=2&_sort=_id",
        "next": f"{url}?_count=2&_sort=_id&_page=2",
    }
    assert {link["relation"]: link["url"] for link in second["link"]} == {
        "self": f"{url}?_count=2&_sort=_id&_page=2",
        "next": f"{url}?_count=2&_sort=_id&_page=3",
        "previous": f"{url}?_count=2&_sort=_id",
    }
    assert [link["relation"] for link in last["link"]] == ["self", "previous"]
    seen = ids(first) + ids(second) + ids(last)
    assert len(seen) == len(set(seen)) == 5
    assert fhir_get(as_clinician, "/fhir/R4/Patient", {"_count": 500}).json()["total"] == 5
    monkeypatch.setattr(pagination, "MAX_RESULTS", 4)
    too_deep = fhir_get(as_clinician, "/fhir/R4/Patient", {"_count": 2, "_page": 3})
    assert too_deep.status_code == 400
    assert too_deep.json()["issue"][0]["expression"] == ["_page"]


def test_a_page_past_the_cap_has_no_next_link(as_clinician, organization, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_RESULTS", 2)
    PatientFactory.create_batch(3, organization=organization)

    bundle = fhir_get(as_clinician, "/fhir/R4/Patient", {"_count": 2}).json()

    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_an_inexact_count_leaves_total_out(as_clinician, organization, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_LIMIT", 2)
    PatientFactory.create_batch(3, organization=organization, gender="F")

    response = fhir_get(as_clinician, "/fhir/R4/Patient", {"gender": "female"})

    assert "total" not in response.json()
    assert response["X-Count-Exact"] == "false"


def test_a_search_records_exactly_the_patients_it_returned(as_clinician, people):
    fhir_get(
        as_clinician, "/fhir/R4/Patient", {"family": "smith", "_count": 1, "_sort": "identifier"}
    )

    event = AuditEvent.objects.get(action="patient.fhir_search")
    assert event.patient_ids == [int(people["john"])]
    assert event.details["params"] == ["_count", "_sort", "family"]
    assert event.details["count"] == 2


def test_search_never_shows_archived_patients(as_admin, organization):
    PatientFactory.create(organization=organization, is_active=False)

    assert fhir_get(as_admin, "/fhir/R4/Patient").json()["total"] == 0


def test_the_search_costs_the_same_queries_whatever_the_page_size(
    as_clinician, organization, django_assert_num_queries, bounded_queries
):
    PatientFactory.create_batch(30, organization=organization, gender="F")
    for size in (1, 25):
        # 1. the capped count  2. the page of patients with their clinic's slug
        # 3. the audit event; on PostgreSQL the statement timeout's statements around 1 and 2
        with django_assert_num_queries(3 + bounded_queries):
            response = fhir_get(
                as_clinician, "/fhir/R4/Patient", {"gender": "female", "_count": size}
            )
        assert len(response.json()["entry"]) == size


def test_a_patient_read_costs_three_queries(as_clinician, organization, django_assert_num_queries):
    patient = PatientFactory.create(organization=organization)

    # 1. the patient (scoped)  2. the clinic's slug (the MRN's system)  3. the audit event
    with django_assert_num_queries(3):
        assert fhir_get(as_clinician, f"/fhir/R4/Patient/{patient.pk}").status_code == 200
