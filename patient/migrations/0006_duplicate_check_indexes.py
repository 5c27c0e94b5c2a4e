"""Indexes of the duplicate check's exact matches (phone and case-insensitive email, per clinic)
and of merged records (`merged_into`, only where set: the foreign-key check of a patient delete
uses it).

The patient table holds millions of rows: on PostgreSQL the indexes are built with CREATE INDEX
CONCURRENTLY (no write lock), which cannot run in a transaction, hence `atomic = False`. Other
databases build them the ordinary way.
"""

import django.db.models.functions.text
from django.db import migrations, models

from pms.indexes import AddIndexConcurrentlyOnPostgreSQL


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("patient", "0005_identity"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="patient",
            index=models.Index(fields=["organization", "phone"], name="patient_org_phone_idx"),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="patient",
            index=models.Index(
                models.F("organization"),
                django.db.models.functions.text.Upper("email"),
                name="patient_org_email_upper_idx",
            ),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="patient",
            index=models.Index(
                condition=models.Q(merged_into__isnull=False),
                fields=["merged_into"],
                name="patient_merged_into_idx",
            ),
        ),
    ]
