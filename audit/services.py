"""Recording audit events. One single-row INSERT per request.

What the database would refuse is escaped first (`clean_text`): a NUL or a lone surrogate sent by
a client must not be a way to leave no trace. A failure to record is logged; with
`fail_closed=True` (requests that read or change patient data, audit/mixins.py) it also raises
`AuditUnavailable`, so the request is refused instead of going unrecorded.

The INSERT is written once per database vendor and sent without the ORM's per-save work
(signals, field pre-save, RETURNING): every request of the API pays for it. Values still go
through each field's own database conversion, so the row is what `AuditEvent.save()` would write.
"""

import ipaddress
import json
import logging
from collections.abc import Iterable
from typing import Any

from django.db import InterfaceError, OperationalError, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from audit.models import AuditEvent, Outcome, Source
from pms.exceptions import ServiceUnavailable

logger = logging.getLogger("pms.audit")


class AuditUnavailable(ServiceUnavailable):
    default_code = "audit_unavailable"
    default_detail = (
        "The request could not be recorded in the audit trail, so it was not carried out. "
        "Try again shortly."
    )


class DatabaseUnavailable(AuditUnavailable):
    """The event could not be written because the database is unreachable."""

    default_code = ServiceUnavailable.default_code
    default_detail = ServiceUnavailable.default_detail


_DENIED_STATUSES = {401, 403, 404, 429}
_MAX_RESOURCE_ID = 64


def outcome_for(status_code: int) -> str:
    if status_code < 400:
        return Outcome.SUCCESS
    if status_code in _DENIED_STATUSES:
        return Outcome.DENIED
    return Outcome.FAILED


def _client_ip(request: Any) -> str | None:
    # DRF's own client-IP logic, so NUM_PROXIES means the same here as for throttles.
    ip = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def clean_text(value: str) -> str:
    """`value` as PostgreSQL stores it in text and jsonb: NUL and lone surrogates (which
    UTF-8 cannot encode) are written as backslash escapes, so the trail shows what was sent."""
    if value.isascii():
        return value.replace("\x00", "\\x00")
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _clean(value: Any) -> Any:
    """`clean_text` through JSON-like data, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def _as_patient_ids(values: Iterable[Any]) -> list[int]:
    ids: list[int] = []
    for value in values:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    return list(dict.fromkeys(ids))


_COLUMNS: "tuple[Field[Any, Any], ...]" = tuple(
    field for field in AuditEvent._meta.concrete_fields if not field.primary_key
)
_INSERT_SQL: dict[str, str] = {}  # by database vendor


def _insert_sql(connection: BaseDatabaseWrapper) -> str:
    sql = _INSERT_SQL.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in _COLUMNS)
        placeholders = ", ".join(["%s"] * len(_COLUMNS))
        table = quote(str(AuditEvent._meta.db_table))
        sql = _INSERT_SQL[connection.vendor] = (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - model names
        )
    return sql


def _insert(values: dict[str, Any]) -> None:
    """One row, keyed by field attname, as a plain INSERT."""
    connection = connections[router.db_for_write(AuditEvent)]
    params = [field.get_db_prep_save(values[field.attname], connection) for field in _COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection), params)


def audit_record(
    *,
    request: Any,
    action: str,
    resource_type: str,
    status_code: int,
    resource_id: Any = "",
    patient_ids: Iterable[Any] = (),
    actor: Any = None,
    actor_username: str = "",
    details: dict[str, Any] | None = None,
    path: str | None = None,
    source: str = Source.API,
    fail_closed: bool = False,
    organization_id: int | None = None,
) -> None:
    """Writes the event of one request: one single-row INSERT.

    A failure is logged; with `fail_closed` it then raises `AuditUnavailable`. The event
    belongs to the actor's clinic, or to `organization_id` for work no user did (a task).
    """
    try:
        user = actor if actor is not None else getattr(request, "user", None)
        if user is not None and not user.is_authenticated:
            user = None
        _insert(
            {
                "occurred_at": timezone.now(),
                "actor_id": user.pk if user else None,
                "actor_username": clean_text(user.get_username() if user else actor_username)[:150],
                "organization_id": getattr(user, "organization_id", None) or organization_id,
                "action": clean_text(action),
                "resource_type": clean_text(resource_type),
                "resource_id": clean_text(str(resource_id or ""))[:_MAX_RESOURCE_ID],
                "patient_ids": _as_patient_ids(patient_ids),
                "outcome": outcome_for(status_code),
                "status_code": status_code,
                "method": clean_text(request.method)[:8],
                "path": clean_text(path or request.path)[:255],
                "ip_address": _client_ip(request),
                "user_agent": clean_text(request.META.get("HTTP_USER_AGENT", ""))[:256],
                "request_id": clean_text(getattr(request, "request_id", ""))[:128],
                # Serialized here, before the INSERT, so a bad value fails outside the database.
                "details": json.loads(json.dumps(_clean(details or {}))),
                "source": source,
            }
        )
    except Exception as exc:
        logger.exception("could not record audit event %s", clean_text(action))
        if fail_closed:
            # A database that went away between the read and its event is an outage, and says
            # so like any other request during one.
            unreachable = isinstance(exc, (OperationalError, InterfaceError))
            raise (DatabaseUnavailable() if unreachable else AuditUnavailable()) from exc
