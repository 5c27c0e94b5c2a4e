"""The GiST trigram index of the ranked search's nearest-neighbour ordering (PostgreSQL only).

`ORDER BY 'TERM' <<-> full_name LIMIT n` walks this index in word-distance order and stops after
n rows, where the GIN index has to hand over every candidate to be ranked and sorted
(patient/search.py). Built CONCURRENTLY (no write lock on a large table), hence not atomic; other
databases have no GiST and skip it.
"""

from django.contrib.postgres.indexes import GistIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class AddIndexConcurrentlyOnlyOnPostgreSQL(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patient", "0006_duplicate_check_indexes"),
    ]

    operations = [
        AddIndexConcurrentlyOnlyOnPostgreSQL(
            model_name="patient",
            index=GistIndex(
                fields=["full_name"], opclasses=["gist_trgm_ops"], name="patient_name_trgm_gist"
            ),
        ),
    ]
