"""Trigram GIN indexes for patient search (PostgreSQL only; a no-op on SQLite).

Each index is on exactly the expression the queries compile to: Django's `icontains` is
`UPPER("col"::text) LIKE UPPER(%s)` on PostgreSQL, and the ranked search's `%>` operator is
written against the same `UPPER("col"::text)`, so one index per column serves both.
"""

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
    dependencies = [
        ("patient", "0001_initial"),
    ]

    operations = [
        # Left installed on reverse: other apps' indexes may use it too.
        PostgreSQLOnly("CREATE EXTENSION IF NOT EXISTS pg_trgm", migrations.RunSQL.noop),
        *(
            PostgreSQLOnly(
                f"CREATE INDEX patient_{field}_trgm_idx ON patient_patient "
                f'USING gin ((UPPER("{field}"::text)) gin_trgm_ops)',
                f"DROP INDEX IF EXISTS patient_{field}_trgm_idx",
            )
            for field in SEARCHED_FIELDS
        ),
    ]
