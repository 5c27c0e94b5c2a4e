"""Trigram GIN indexes for `search` on PostgreSQL.

Django compiles `title__icontains` to `UPPER("title"::text) LIKE UPPER(%s)`, so the indexes are
on that expression. Other databases skip this migration's SQL.
"""

from django.db import migrations

INDEXED_COLUMNS = ("title", "filename")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in INDEXED_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS document_{column}_trgm_idx ON document_document "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in INDEXED_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS document_{column}_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [
        ("document", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
