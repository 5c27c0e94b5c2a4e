"""Migration operations for the trigram search (pg_trgm) and for indexes on tables that grow.

On PostgreSQL they are built with `CREATE INDEX CONCURRENTLY` (django.contrib.postgres's
`AddIndexConcurrently`): a plain CREATE INDEX would block the table's writes while it reads
millions of rows. CONCURRENTLY cannot run in a transaction, so a migration using them sets
`atomic = False`.
"""

from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently, CreateExtension
from django.db import migrations
from django.db.models import F, Index
from django.db.models.functions import Upper


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    """CONCURRENTLY on PostgreSQL; on other databases `elsewhere`: the ordinary AddIndex, or
    nothing for an index only PostgreSQL has."""

    elsewhere: type[migrations.AddIndex] | None = migrations.AddIndex

    def _on(self, schema_editor: Any) -> type[migrations.AddIndex] | None:
        on_postgresql = schema_editor.connection.vendor == "postgresql"
        return AddIndexConcurrently if on_postgresql else self.elsewhere

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if operation := self._on(schema_editor):
            operation.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if operation := self._on(schema_editor):
            operation.database_backwards(self, app_label, schema_editor, from_state, to_state)


class _OnlyOnPostgreSQL(AddIndexConcurrentlyOnPostgreSQL):
    elsewhere = None


def postgresql_only_index(model_name: str, index: Index) -> migrations.SeparateDatabaseAndState:
    """`index`, built CONCURRENTLY on PostgreSQL and nowhere else, and outside the models'
    state: SQLite (the embedded default) cannot build a GIN or GiST index, and its table
    rebuilds recreate every index the state holds."""
    return migrations.SeparateDatabaseAndState(
        database_operations=[_OnlyOnPostgreSQL(model_name=model_name, index=index)]
    )


def trigram_gin(field: str, name: str, led_by: str | None = None) -> GinIndex:
    """A trigram GIN index on `UPPER(field)`, the expression Django compiles `icontains` to on
    PostgreSQL (`UPPER("field"::text) LIKE UPPER(%s)`), which the ranked search's word
    similarity is written against too: one index serves both. `led_by` puts a column first
    (btree_gin), so a query that also filters on it reads only its entries."""
    expressions = ([F(led_by)] if led_by else []) + [OpClass(Upper(field), name="gin_trgm_ops")]
    return GinIndex(*expressions, name=name)


def trigram_index(
    model_name: str, field: str, name: str, led_by: str | None = None
) -> migrations.SeparateDatabaseAndState:
    """`trigram_gin`, PostgreSQL only."""
    return postgresql_only_index(model_name, trigram_gin(field, name, led_by))


class _DropOnPostgreSQL(_OnlyOnPostgreSQL):
    """An index of `postgresql_only_index` dropped CONCURRENTLY; reversing builds it again."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        super().database_backwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return f"Drop index {self.index.name} on PostgreSQL (concurrently)"


def dropped_postgresql_only_index(
    model_name: str, index: Index
) -> migrations.SeparateDatabaseAndState:
    """The reverse of `postgresql_only_index(model_name, index)`."""
    return migrations.SeparateDatabaseAndState(
        database_operations=[_DropOnPostgreSQL(model_name=model_name, index=index)]
    )


class ExtensionOnPostgreSQL(CreateExtension):
    """A PostgreSQL extension, created there and dropped when its migration is reversed.
    Django's reverse lacks the vendor check its forward has: on SQLite it queried
    `pg_extension`, a table SQLite does not have."""

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class TrigramExtensionOnPostgreSQL(ExtensionOnPostgreSQL):
    """pg_trgm, for every app's trigram indexes."""

    def __init__(self) -> None:
        super().__init__("pg_trgm")


def without_gin_pending_list(*names: str) -> migrations.RunPython:
    """The GIN indexes `names` with fast update off, and what they hold pending merged now;
    reversed, fast update back to PostgreSQL's default (nothing on other databases).

    With fast update a write's entries go to a pending list, which every scan of the index
    reads in full until VACUUM or a list past `gin_pending_list_limit` merges it: a search
    index read far more often than written is faster without it (docs/performance.md, "GIN's
    pending list"). `ALTER INDEX ... SET` lets reads and writes go on.
    """

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in names:
            schema_editor.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
            schema_editor.execute("SELECT gin_clean_pending_list(%s::regclass)", [name])

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in names:
            schema_editor.execute(f"ALTER INDEX {name} RESET (fastupdate)")

    return migrations.RunPython(forwards, backwards, elidable=False)
