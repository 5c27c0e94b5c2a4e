"""Trigram GIN indexes for `search` on PostgreSQL (nothing on SQLite).

Django compiles `title__icontains` to `UPPER("title"::text) LIKE UPPER(%s)`, so the indexes are
on that expression. Built CONCURRENTLY (the table may already be large), so the migration is
not atomic; kept out of the models' state (pms/indexes.py).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from pms.indexes import trigram_index

INDEXED_COLUMNS = ("title", "filename")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("document", "0001_initial"),
    ]

    operations = [
        TrigramExtension(),
        *(
            trigram_index("document", column, name=f"document_{column}_trgm_idx")
            for column in INDEXED_COLUMNS
        ),
    ]
