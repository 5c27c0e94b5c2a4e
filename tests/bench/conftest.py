from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from bench import generate

PATIENTS = 5000
DOCUMENTS = 10000


@pytest.fixture
def dataset(postgres_only: None, db: None) -> dict[str, Any]:
    """A small benchmark dataset made by the generator's own SQL in the test database."""
    organizations = generate.create_accounts()
    now = timezone.now()
    with connection.cursor() as cur:
        generate.load_patients(cur, PATIENTS, organizations, now)
        generate.load_documents(cur, DOCUMENTS, PATIENTS, now)
        terms = generate.pick_search_terms(cur, organizations[0]["organization_id"])
    return {
        "organizations": organizations,
        "search_terms": terms,
        "patients": PATIENTS,
        "documents": DOCUMENTS,
    }
