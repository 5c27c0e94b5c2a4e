"""The search's trigram indexes led by the organization (PostgreSQL only; nothing on SQLite).

Every patient search is scoped to one clinic. With the trigram indexes of migration 0002 over
all clinics, PostgreSQL matched a term in every clinic's rows and then either dropped the other
clinics' rows one by one or ANDed a bitmap of the clinic's 300,000 rows from an organization
index; which of the two, or a sequential scan that stops at the capped count, it chose from the
few histogram entries containing the term, so the same search took 7 or 25 ms (`sandoval`), 15
or 57 ms (`smith`) from one ANALYZE to the next. Led by the organization (btree_gin), the index
holds each clinic's trigrams apart: the search reads only the clinic's matches, and the
organization's bitmap and the scan are no longer cheaper. Measured in docs/performance.md
("Search plans"). A query without the organization (a platform superuser's admin search) still
uses them: a GIN index serves any subset of its columns.

Each new index gets the 1,000-entry histogram of its expression (migration 0004 gave it to the
old ones); then the old indexes go. Built and dropped CONCURRENTLY (13 s at a million patients),
so the migration is not atomic.
"""

from django.db import migrations

from pms.indexes import (
    ExtensionOnPostgreSQL,
    dropped_postgresql_only_index,
    trigram_gin,
    trigram_index,
)

SEARCHED_FIELDS = ("full_name", "email", "phone", "mrn")
STATISTICS_TARGET = 1000


def _set_statistics(names, column):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in names:
            schema_editor.execute(
                f"ALTER INDEX {name} ALTER COLUMN {column} SET STATISTICS {STATISTICS_TARGET}"
            )
        schema_editor.execute("ANALYZE patient_patient")

    return apply


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patient", "0007_nearest_name_index"),
    ]

    operations = [
        ExtensionOnPostgreSQL("btree_gin"),
        *(
            trigram_index(
                "patient", field, name=f"patient_org_{field}_trgm_idx", led_by="organization"
            )
            for field in SEARCHED_FIELDS
        ),
        # The expression is the index's second column; reversed, the old indexes (built again
        # below first) get their histograms back.
        migrations.RunPython(
            _set_statistics([f"patient_org_{field}_trgm_idx" for field in SEARCHED_FIELDS], 2),
            _set_statistics([f"patient_{field}_trgm_idx" for field in SEARCHED_FIELDS], 1),
            elidable=False,
        ),
        *(
            dropped_postgresql_only_index(
                "patient", trigram_gin(field, name=f"patient_{field}_trgm_idx")
            )
            for field in SEARCHED_FIELDS
        ),
    ]
