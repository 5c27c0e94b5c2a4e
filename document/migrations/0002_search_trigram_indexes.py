"""Trigram GIN indexes for `search` on PostgreSQL (nothing on SQLite).

Django compiles `title__icontains` to `UPPER("title"::text) LIKE UPPER(%s)`, so the indexes are
on that expression. Built CONCURRENTLY (the table may already be large), so the migration is
not atomic; kept out of the models' state (pms/indexes.py). The pg_trgm extension comes from
patient 0002: reversing this migration drops these indexes only, not the extension the
patients' indexes need.
"""

from django.db import migrations

from pms.indexes import trigram_index

INDEXED_COLUMNS = ("title", "filename")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("document", "0001_initial"),
        ("patient", "0002_trigram_search_indexes"),
    ]

    operations = [
        *(
            trigram_index("document", column, name=f"document_{column}_trgm_idx")
            for column in INDEXED_COLUMNS
        ),
    ]
