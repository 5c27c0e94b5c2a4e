"""Trigram GIN indexes for patient search (PostgreSQL only; nothing on SQLite).

Each index is on exactly the expression the queries compile to: Django's `icontains` is
`UPPER("col"::text) LIKE UPPER(%s)` on PostgreSQL, and the ranked search's word similarity is
written against the same `UPPER(col)`, so one index per column serves both. Built CONCURRENTLY
(the table may already be large), so the migration is not atomic; kept out of the models'
state, which SQLite must be able to build (pms/indexes.py).
"""

from django.db import migrations

from pms.indexes import TrigramExtensionOnPostgreSQL, trigram_index

SEARCHED_FIELDS = ("full_name", "email", "phone", "mrn")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patient", "0001_initial"),
    ]

    operations = [
        # pg_trgm for every app's trigram indexes (document 0002 depends on this migration); a
        # no-op on other databases; reversing it drops the extension.
        TrigramExtensionOnPostgreSQL(),
        *(
            trigram_index("patient", field, name=f"patient_{field}_trgm_idx")
            for field in SEARCHED_FIELDS
        ),
    ]
