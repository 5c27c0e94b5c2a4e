from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from bench import generate
from tests.db import built_once

PATIENTS = 5000
DOCUMENTS = 10000


@pytest.fixture(scope="module")
def built_dataset(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """A small benchmark dataset made by the generator's own SQL in the test database, once per
    module (`tests.db.built_once`: ~1 s of SQL each time)."""
    with built_once(django_db_blocker):
        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL")
        organizations = generate.create_accounts()
        now = timezone.now()
        with connection.cursor() as cur:
            generate.load_patients(cur, PATIENTS, organizations, now)
            generate.load_documents(cur, DOCUMENTS, PATIENTS, now)
            terms = generate.pick_search_terms(cur, organizations[0]["organization_id"])
        yield {
            "organizations": organizations,
            "search_terms": terms,
            "patients": PATIENTS,
            "documents": DOCUMENTS,
        }


@pytest.fixture
def dataset(built_dataset: dict[str, Any], db: None) -> dict[str, Any]:
    return built_dataset
