"""The nearest-names index of the ranked search (PostgreSQL only; nothing on SQLite).

A GiST trigram index on `full_name`, led by the organization (btree_gist) and ending with the id
as a float (patient/search.py, `nearest_names`): the clinic's names come out nearest to the
term first, ties by id, so a page of a common name reads only the page's rows instead of ranking
every candidate. The id is a float because PostgreSQL takes a second ORDER BY distance beside a
lossy one (the trigram word distance) only as float4 or float8. Built CONCURRENTLY (12 s at a
million patients), so the migration is not atomic.
"""

from django.contrib.postgres.indexes import GistIndex, OpClass
from django.db import migrations
from django.db.models import F, FloatField
from django.db.models.functions import Cast

from pms.indexes import ExtensionOnPostgreSQL, postgresql_only_index

# Each inner page's trigram signature, in bytes (pg_trgm's default is 12). At the default the
# signatures of a page of names cover nearly every trigram and a term with few near names walks
# most of the clinic (`rodriguezrodrigu`: 24-60 ms for its 21 nearest); at 256, 0.6-1 ms, for an
# index of 119 MB instead of 114 at a million patients.
SIGNATURE_BYTES = 256


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patient", "0006_duplicate_check_indexes"),
    ]

    operations = [
        ExtensionOnPostgreSQL("btree_gist"),
        postgresql_only_index(
            "patient",
            GistIndex(
                F("organization"),
                OpClass(F("full_name"), name=f"gist_trgm_ops(siglen={SIGNATURE_BYTES})"),
                Cast("id", FloatField()),
                name="patient_org_name_gist_idx",
            ),
        ),
    ]
