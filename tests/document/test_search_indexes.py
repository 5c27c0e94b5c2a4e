"""On PostgreSQL, `search` can use the trigram indexes of migration 0002."""

from django.db import connection

from document.filters import DocumentFilter
from document.models import Document
from patient.models import Patient
from tests.factories import DocumentFactory


def test_search_can_use_the_trigram_indexes(postgres_only: None, patient: Patient) -> None:
    for index in range(30):
        DocumentFactory.create(patient=patient, title=f"Report {index}", filename=f"r{index}.pdf")
    # No other filter, so the plan shows whether the indexes match Django's `icontains` SQL.
    queryset = DocumentFilter({"search": "cardio"}, queryset=Document.objects.all()).qs
    with connection.cursor() as cursor:
        # A 30-row table is cheaper to scan; forbid that to see which indexes the plan can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()

    assert "document_title_trgm_idx" in plan
    assert "document_filename_trgm_idx" in plan
