"""Migration operations for indexes on tables that grow (patients, documents).

On PostgreSQL they are built with `CREATE INDEX CONCURRENTLY` (django.contrib.postgres's
`AddIndexConcurrently`): a plain CREATE INDEX would block the table's writes while it reads
millions of rows. CONCURRENTLY cannot run in a transaction, so a migration using them sets
`atomic = False`.
"""

from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from django.db.models.functions import Upper


def _on_postgresql(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    """CONCURRENTLY on PostgreSQL; the ordinary AddIndex on other databases."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _on_postgresql(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _on_postgresql(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )


class _AddIndexConcurrentlyOnlyOnPostgreSQL(AddIndexConcurrently):
    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _on_postgresql(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if _on_postgresql(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def trigram_index(model_name: str, field: str, name: str) -> migrations.SeparateDatabaseAndState:
    """A trigram GIN index on `UPPER(field)`, the expression Django compiles `icontains` to on
    PostgreSQL (`UPPER("field"::text) LIKE UPPER(%s)`), which the ranked search's word
    similarity is written against too: one index serves both.

    PostgreSQL only, and outside the models' state: SQLite (the embedded default) cannot build
    a GIN index, and its table rebuilds recreate every index the state holds."""
    index = GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name)
    return migrations.SeparateDatabaseAndState(
        database_operations=[
            _AddIndexConcurrentlyOnlyOnPostgreSQL(model_name=model_name, index=index)
        ]
    )
