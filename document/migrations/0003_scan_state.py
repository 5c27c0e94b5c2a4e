"""Scan state and the pinned GCS generation.

Documents confirmed before scanning existed were never scanned: they become `skipped` (the
column is added with that default, a metadata-only change on PostgreSQL 11+), and new rows
then default to `pending`. No index: nothing lists documents by scan state.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("document", "0002_search_trigram_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="object_generation",
            field=models.PositiveBigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="document",
            name="scan_status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("clean", "Clean"),
                    ("infected", "Infected"),
                    ("error", "Error"),
                    ("skipped", "Skipped"),
                ],
                default="skipped",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="document",
            name="scan_status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("clean", "Clean"),
                    ("infected", "Infected"),
                    ("error", "Error"),
                    ("skipped", "Skipped"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="document",
            name="scanned_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="document",
            name="scan_finding",
            field=models.CharField(blank=True, max_length=255),
        ),
    ]
