"""Records built once for a whole module."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction


@contextmanager
def built_once(django_db_blocker: Any) -> Iterator[None]:
    """For a module-scoped fixture: what it builds inside this block lives in one transaction,
    rolled back when the module is done. Each test runs in a savepoint of it (pytest-django's
    `db`), so it sees the records as built and what it changes is undone."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)
