"""Trigram GIN indexes for patient search (PostgreSQL only; a no-op on SQLite).

Each index is on exactly the expression the queries compile to: Django's `icontains` is
`UPPER("col"::text) LIKE UPPER(%s)` on PostgreSQL, and the ranked search's `%>` operator is
written against the same `UPPER("col"::text)`, so one index per column serves both.

The indexes are built CONCURRENTLY (the table may already be large; a plain CREATE INDEX would
block its writes), so the migration is not atomic. They stay out of the models' state: an
expression GIN index cannot be declared for SQLite, the embedded default.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

SEARCHED_FIELDS = ("full_name", "email", "phone", "mrn")


class PostgreSQLOnly(migrations.RunSQL):
    """RunSQL that does nothing on other databases."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patient", "0001_initial"),
    ]

    operations = [
        # A no-op on other databases; reversing it drops the extension.
        TrigramExtension(),
        *(
            PostgreSQLOnly(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS patient_{field}_trgm_idx "
                f'ON patient_patient USING gin ((UPPER("{field}"::text)) gin_trgm_ops)',
                f"DROP INDEX CONCURRENTLY IF EXISTS patient_{field}_trgm_idx",
            )
            for field in SEARCHED_FIELDS
        ),
    ]
