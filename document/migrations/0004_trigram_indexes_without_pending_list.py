"""The documents' search indexes without GIN's pending list (PostgreSQL only), as the patients'
(patient 0009). At 2,000,000 documents, 3,600 pending entries made a clinic's `search` for a
rare filename take 7.4 ms instead of 3.3 (its capped count, psql, medians of five) and for a
common title 36.5 instead of 32.5; without fast update an INSERT took 0.83-0.87 ms instead of
0.63-0.64 (300 single-row INSERTs per setting, alternating). Measured in docs/performance.md
("GIN's pending list").
"""

from django.db import migrations

from pms.indexes import without_gin_pending_list


class Migration(migrations.Migration):
    dependencies = [
        ("document", "0003_scan_state"),
    ]

    operations = [
        without_gin_pending_list("document_title_trgm_idx", "document_filename_trgm_idx"),
    ]
