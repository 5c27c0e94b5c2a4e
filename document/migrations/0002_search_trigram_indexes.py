"""Trigram GIN indexes for `search` on PostgreSQL.

Django compiles `title__icontains` to `UPPER("title"::text) LIKE UPPER(%s)`, so the indexes are
on that expression. Other databases skip this migration's SQL. The indexes are built
CONCURRENTLY (the table may already be large), so the migration is not atomic.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXED_COLUMNS = ("title", "filename")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in INDEXED_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS document_{column}_trgm_idx "
            f"ON document_document USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in INDEXED_COLUMNS:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS document_{column}_trgm_idx")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("document", "0001_initial"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
