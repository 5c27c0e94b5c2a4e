"""The trigram search's migrations reverse cleanly on both databases (pms/indexes.py).

One app's reversal must not drop pg_trgm while the other's indexes use it, and SQLite must not
be asked about PostgreSQL's extensions."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

SEARCHED_FIELDS = ("full_name", "email", "phone", "mrn")

pytestmark = pytest.mark.django_db(transaction=True)


def trigram_indexes() -> set[str]:
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%gin_trgm_ops%'")
        return {name for (name,) in cursor.fetchall()}


def has_pg_trgm() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def test_the_documents_and_then_the_patients_trigram_migrations_reverse_and_apply_again():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    before = trigram_indexes()
    try:
        executor.migrate([("document", "0001_initial")])
        left = trigram_indexes()
        # The documents' indexes are gone; the patients' keep the extension they need. The
        # patients' migrations from 0005 on depend on the documents' and are reversed with
        # them, so their indexes are those of patient 0002 again (0008 leads them by the clinic).
        assert not any(name.startswith("document_") for name in left)
        if connection.vendor == "postgresql":
            assert left == {f"patient_{field}_trgm_idx" for field in SEARCHED_FIELDS}
            assert has_pg_trgm()

        MigrationExecutor(connection).migrate([("patient", "0001_initial")])
        assert trigram_indexes() == set()
        if connection.vendor == "postgresql":
            assert not has_pg_trgm()
    finally:
        MigrationExecutor(connection).migrate(latest)
    assert trigram_indexes() == before


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize(
    "index",
    [
        *(f"patient_org_{field}_trgm_idx" for field in SEARCHED_FIELDS),
        "document_title_trgm_idx",
        "document_filename_trgm_idx",
    ],
)
def test_each_search_trigram_index_has_no_pending_list(index: str) -> None:
    # Migrations patient 0009 and document 0004: every search read GIN's pending list of recent
    # writes in full, so the writes go into the index at once.
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [index])
        (options,) = cursor.fetchone()

    assert options == ["fastupdate=off"]
