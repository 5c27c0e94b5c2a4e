"""Error reporting to Sentry (sentry-sdk), on when `SENTRY_DSN` is set; no PHI leaves the app.

Sentry keeps what it is sent on a third party's servers, so an event is reduced to what finds
the bug: the exception's type, the stack (file, function, line, source), the route and the
request id, which leads to the PHI-free log lines of the same request. `before_send` removes
everything else that could hold PHI, whatever the options or integrations put there:

- the request's body, query string, cookies and every header but a few harmless ones;
- the local variables of every frame, and the message of every exception (a database error
  quotes the row: `Key (email)=(...) already exists`);
- the parameters of a log message (its template stays) and of every breadcrumb;
- under any key named like a patient or document field or a credential, the value.
"""

from typing import Any, cast

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.types import Event, Hint

from pms.context import current_request_id

FILTERED = "[Filtered]"
# Fields of Patient and Document whose values are PHI (tests/pms/test_sentry.py makes every new
# field choose a side), and the query parameters that search by them.
PHI_FIELD_NAMES = frozenset(
    {
        "mrn",
        "full_name",
        "email",
        "phone",
        "date_of_birth",
        "birth_date_estimated",
        "age",
        "gender",
        "address",
        "notes",
        "title",
        "filename",
        "q",
        "search",
    }
)
# The names credentials go by in requests and headers.
CREDENTIAL_NAMES = frozenset(
    {
        "password",
        "new_password",
        "code",
        "token",
        "access",
        "refresh",
        "id_token",
        "access_token",
        "authorization",
        "cookie",
        "secret",
    }
)
# Django's loggers pass the request as an extra (its repr holds the query string).
_SCRUBBED_KEYS = PHI_FIELD_NAMES | CREDENTIAL_NAMES | {"request"}
# Request headers that say nothing about a person.
_KEPT_HEADERS = frozenset({"content-type", "content-length", "x-request-id", "host"})


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: FILTERED if str(key).lower() in _SCRUBBED_KEYS else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    holders = [
        *event.get("exception", {}).get("values", []),
        *event.get("threads", {}).get("values", []),
    ]
    return [
        frame for holder in holders for frame in (holder.get("stacktrace") or {}).get("frames", [])
    ]


def before_send(event: Event, hint: Hint) -> Event:
    """Strips PHI from every event before it is sent (the module docstring lists what)."""
    data = cast(dict[str, Any], event)
    request = data.get("request")
    if request is not None:
        for key in ("data", "query_string", "cookies", "env"):
            request.pop(key, None)
        headers = request.get("headers") or {}
        request["headers"] = {
            name: value for name, value in headers.items() if name.lower() in _KEPT_HEADERS
        }
    for frame in _frames(data):
        frame.pop("vars", None)
    for exception in data.get("exception", {}).get("values", []):
        if exception.get("value"):
            exception["value"] = FILTERED
    logentry = data.get("logentry")
    if logentry is not None:
        logentry.pop("params", None)
        logentry["formatted"] = logentry.get("message", "")
    breadcrumbs = data.get("breadcrumbs", {})
    for crumb in breadcrumbs.get("values", []) if isinstance(breadcrumbs, dict) else []:
        crumb.pop("data", None)
    for section in ("extra", "contexts", "user", "tags"):
        if section in data:
            data[section] = _scrub(data[section])
    data.setdefault("tags", {})["request_id"] = current_request_id()
    return event


def init_sentry(*, dsn: str, environment: str, release: str, **overrides: Any) -> None:
    """Starts reporting; `overrides` replace the options below (a test passes its transport)."""
    options: dict[str, Any] = {
        "integrations": [DjangoIntegration(), CeleryIntegration()],
        # What integrations collect, stricter than `send_default_pii=False` (which sentry-sdk
        # 2.75 deprecates for this option). Belt and braces: before_send removes it all anyway.
        "data_collection": {
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "allowlist", "terms": sorted(_KEPT_HEADERS)}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        # Errors only: no performance traces, which would carry each request's SQL.
        "traces_sample_rate": 0,
        "before_send": before_send,
    }
    sentry_sdk.init(dsn=dsn, environment=environment, release=release, **{**options, **overrides})
