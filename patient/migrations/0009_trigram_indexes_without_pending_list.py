"""The search's trigram indexes without GIN's pending list (PostgreSQL only; nothing on SQLite).

With GIN's fast update (PostgreSQL's default) a new or changed patient's trigrams go to a
pending list, which every scan of the index reads in full until VACUUM, or a list grown past
`gin_pending_list_limit` (4 MB), merges it into the index. At a million patients, the 3,592
pending entries of three benchmark runs' writes made each trigram condition of a search read
113-250 pending pages: the ranked `q=sanodval` took 37.3 ms per request instead of 22.5, and
`q=maria` 47.2 instead of 38.5. Without it each write updates the index at once: a patient's
create took 9.68 ms instead of 9.36 (medians of 240, alternating). Measured in
docs/performance.md ("GIN's pending list"). The entries pending now are merged into the index
here.
"""

from django.db import migrations

from pms.indexes import without_gin_pending_list


class Migration(migrations.Migration):
    dependencies = [
        ("patient", "0008_organization_led_trigram_indexes"),
    ]

    operations = [
        without_gin_pending_list(
            *(f"patient_org_{field}_trgm_idx" for field in ("full_name", "email", "phone", "mrn"))
        ),
    ]
