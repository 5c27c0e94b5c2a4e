"""What a request wrote to the database, seen statement by statement.

A request that must change nothing is checked by the statements it sent, not by reading every
table before and after: no INSERT, UPDATE or DELETE (nor DDL) reached the database, so no row
changed, not even to its own value. The audit trail's INSERT is left out: a refused request is
recorded on purpose.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from audit.models import AuditEvent

# A statement that begins with a write, or a WITH query holding one (a data-modifying CTE).
_WRITE = re.compile(
    r"\s*((INSERT|UPDATE|DELETE|MERGE|REPLACE|TRUNCATE|ALTER|DROP|CREATE)\b"
    r"|WITH\b.*\b(INSERT|UPDATE|DELETE|MERGE)\b)",
    re.I | re.S,
)
_AUDIT = re.compile(rf"\s*INSERT\s+INTO\s+\W?{AuditEvent._meta.db_table}\W", re.I)


@contextmanager
def writes_recorded() -> Iterator[list[str]]:
    """The write statements sent on the default connection inside the block, in order."""
    writes: list[str] = []

    def record(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if _WRITE.match(sql) and not _AUDIT.match(sql):
            writes.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        yield writes
