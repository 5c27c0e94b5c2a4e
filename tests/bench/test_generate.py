"""The benchmark dataset: generated in SQL, it must look like what the app itself writes."""

import re
from typing import Any

import pytest
from django.conf import settings
from django.core.validators import validate_email
from django.db import connection, transaction

from bench import generate, names
from bench.generate import BenchError
from document.models import Document, DocumentType
from patient import services
from patient.models import MRNSequence, Patient
from patient.validators import normalize_phone
from tests.bench.conftest import DOCUMENTS, PATIENTS
from tests.factories import OrganizationFactory, PatientFactory


def surname(full_name: str) -> str:
    return full_name.rsplit(" ", 1)[-1]


def test_generated_patients_pass_the_models_and_the_apis_validation(
    dataset: dict[str, Any],
) -> None:
    patients = list(Patient.objects.order_by("id"))

    assert [patient.pk for patient in patients] == list(range(1, PATIENTS + 1))
    for patient in patients[::25]:
        patient.full_clean()
    for patient in patients:
        if patient.email:
            validate_email(patient.email)
        if patient.phone:
            assert normalize_phone(patient.phone) == patient.phone
        assert 0 <= patient.age <= 100
        assert patient.created_at <= patient.updated_at
        assert (patient.archived_at is None) == patient.is_active
        assert patient.version == 1 or patient.updated_at > patient.created_at
    created = [patient.created_at for patient in patients]
    assert created == sorted(created), "ids and creation times grow together"
    assert created[-1] - created[0] > generate.SPAN * 0.99


def test_each_organization_numbers_its_mrns_like_the_app_and_its_counter_goes_on(
    dataset: dict[str, Any],
) -> None:
    for organization in dataset["organizations"]:
        organization_id = organization["organization_id"]
        mrns = set(
            Patient.objects.filter(organization_id=organization_id).values_list("mrn", flat=True)
        )
        expected = {f"MRN-{number:06d}" for number in range(1, len(mrns) + 1)}
        assert mrns == expected
        assert MRNSequence.objects.get(organization_id=organization_id).last_value == len(mrns)
        with transaction.atomic():
            assert services.mrn_allocate(organization_id) == f"MRN-{len(mrns) + 1:06d}"


def test_organization_sizes_and_surnames_are_skewed(dataset: dict[str, Any]) -> None:
    sizes = [
        Patient.objects.filter(organization_id=organization["organization_id"]).count()
        for organization in dataset["organizations"]
    ]
    counts: dict[str, int] = {}
    for full_name in Patient.objects.values_list("full_name", flat=True):
        counts[surname(full_name)] = counts.get(surname(full_name), 0) + 1
    real = sorted((counts[name] for name in names.SURNAMES if name in counts), reverse=True)
    rare = [count for name, count in counts.items() if name not in names.SURNAMES]

    assert sizes[0] > 0.25 * PATIENTS
    assert sizes[0] > 5 * sizes[-1]
    assert counts["Smith"] == real[0]
    assert real[0] > 5 * real[len(real) // 2]
    assert len(rare) > 0.15 * PATIENTS / 5
    assert max(rare) <= 5


def test_search_terms_are_common_medium_rare_and_a_typo(dataset: dict[str, Any]) -> None:
    terms = dataset["search_terms"]

    assert terms["common"]["term"] == "smith"
    assert terms["common"]["surname_patients"] > terms["medium"]["surname_patients"]
    assert terms["medium"]["surname_patients"] > terms["rare"]["surname_patients"] >= 1
    assert terms["rare"]["term"].capitalize() not in names.SURNAMES
    typo, word = terms["typo"]["term"], terms["typo"]["of"]
    assert typo != word
    assert sorted(typo) == sorted(word)
    assert sum(a != b for a, b in zip(typo, word, strict=True)) == 2


def test_documents_follow_their_patient_and_the_upload_rules(dataset: dict[str, Any]) -> None:
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) FROM document_document d JOIN patient_patient p ON p.id = d.patient_id
            WHERE d.organization_id <> p.organization_id OR d.created_at < p.created_at
            """
        )
        (mismatched,) = cur.fetchone()
    documents = list(Document.objects.order_by("id"))
    pending = [document for document in documents if not document.is_uploaded]

    assert len(documents) == DOCUMENTS
    assert mismatched == 0
    assert {document.document_type for document in documents} == set(DocumentType.values)
    assert {document.content_type for document in documents} <= set(
        settings.DOCUMENT_ALLOWED_CONTENT_TYPES
    )
    assert len({document.object_name for document in documents}) == DOCUMENTS
    assert 0.02 * DOCUMENTS < len(pending) < 0.1 * DOCUMENTS
    assert all(document.uploaded_at is None and not document.checksum for document in pending)
    for document in documents[::50]:
        document.full_clean()
        assert re.fullmatch(r"documents/\d+/[0-9a-f]{32}", document.object_name)
        assert document.object_name.split("/")[1] == str(document.organization_id)
        assert 1 <= document.size_bytes <= settings.DOCUMENT_MAX_BYTES
    created = [document.created_at for document in documents]
    assert created == sorted(created)


def test_a_database_holding_patients_it_did_not_make_is_refused(
    postgres_only: None, db: None
) -> None:
    PatientFactory.create(organization=OrganizationFactory.create())

    with connection.cursor() as cur, pytest.raises(BenchError):
        generate.refuse_foreign_database(cur)


def test_a_dataset_it_made_is_recognized_by_its_marker(dataset: dict[str, Any]) -> None:
    with connection.cursor() as cur:
        generate.write_marker(cur, {"generator_version": generate.GENERATOR_VERSION, "scale": 1})
        marker = generate.refuse_foreign_database(cur)

    assert marker == {"generator_version": generate.GENERATOR_VERSION, "scale": 1}


def test_sizes_scale_linearly_with_a_floor_for_tiny_runs() -> None:
    assert generate.dataset_sizes(1.0) == (1_000_000, 2_000_000)
    assert generate.dataset_sizes(0.002) == (2_000, 4_000)
    assert generate.dataset_sizes(0.00001) == (100, 200)
    with pytest.raises(BenchError):
        generate.dataset_sizes(0)


@pytest.mark.parametrize(
    ("word", "typo"), [("bradley", "brdaley"), ("russell", "rsusell"), ("aa", "aa"), ("ab", "ba")]
)
def test_a_typo_swaps_two_different_neighbouring_letters(word: str, typo: str) -> None:
    assert generate._transposed(word) == typo


def test_the_rebuilt_indexes_keep_their_statistics_targets(postgres_only: None, db: None) -> None:
    # Migration patient 0008 gives the trigram-indexed expressions (each index's second
    # column, after the organization) 1,000-entry histograms; an index's definition does not
    # carry them, so the rebuild after the load restores them.
    def targets() -> dict[str, tuple[int, int]]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT c.relname, a.attnum, a.attstattarget FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname LIKE 'patient_%%_trgm_idx' AND a.attstattarget > 0"
            )
            return {name: (column, target) for name, column, target in cur.fetchall()}

    before = targets()
    with connection.cursor() as cur:
        # Another test module's dataset may still hold deferred foreign-key checks, which
        # CREATE INDEX refuses to run beside.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        statements = generate.drop_secondary_indexes(cur, ["patient_patient"])
        assert targets() == {}
        for statement in statements:
            cur.execute(statement)

    assert before == {
        f"patient_org_{field}_trgm_idx": (2, 1000)
        for field in ("full_name", "email", "phone", "mrn")
    }
    assert targets() == before


def test_the_plain_builds_table_is_the_rows_with_a_stock_models_indexes_only(
    postgres_only: None, dataset: dict[str, Any]
) -> None:
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as above: CREATE INDEX runs after
        generate.copy_for_plain_build(cur)
        cur.execute(
            "SELECT (SELECT array_agg(id ORDER BY id) FROM plain.patient_patient) "
            "= (SELECT array_agg(id ORDER BY id) FROM public.patient_patient)"
        )
        (same_rows,) = cur.fetchone()
        cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'plain'")
        indexes = sorted(re.sub(r"INDEX \S+ ON", "INDEX ON", row[0]) for row in cur.fetchall())

    assert same_rows
    assert indexes == [
        "CREATE INDEX ON plain.patient_patient USING btree (created_by_id)",
        "CREATE INDEX ON plain.patient_patient USING btree (merged_into_id)",
        "CREATE INDEX ON plain.patient_patient USING btree (organization_id)",
        "CREATE UNIQUE INDEX ON plain.patient_patient USING btree (id)",
        "CREATE UNIQUE INDEX ON plain.patient_patient USING btree (organization_id, mrn)",
    ]
