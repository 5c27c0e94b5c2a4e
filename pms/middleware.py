"""Request correlation (an id echoed in `X-Request-ID` and in every log line), the access log
and the request metrics, the body-size limit, the Content-Security-Policy, and the admin-only
layers (`AdminOnly`)."""

import logging
import re
import uuid
from collections.abc import Callable
from time import perf_counter
from typing import Any

from axes.middleware import AxesMiddleware
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject, empty

from audit.mixins import OVERSIZED_BODY_LIMIT, AuditedViewMixin
from pms.context import request_id_var
from pms.exceptions import error_response
from pms.metrics import method_of, observe_request, route_of

REQUEST_ID_HEADER = "X-Request-ID"
# A client-sent id is echoed only when it is short and plain, so it cannot forge log lines.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIDMiddleware:
    """Takes the client's `X-Request-ID` when valid, else makes one, and returns it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = sent if _VALID_REQUEST_ID.match(sent) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


access_logger = logging.getLogger("pms.access")


def _known_user(request: HttpRequest) -> Any:
    """The user the request was authenticated as, without loading one nobody asked for.

    DRF puts its (JWT) user on the request; Django's session user is a lazy object that would
    cost a session and a user query if the log line were the first to look.
    """
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return user if getattr(user, "is_authenticated", False) else None


class AccessLogMiddleware:
    """One access log line and the request metrics for every request.

    The route is the URL pattern's template, never the raw path (which holds ids), and no query
    string, body or header is logged: nothing in the line can be PHI. The duration ends when the
    view returns, so a streamed file download counts its set-up, not its transfer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = perf_counter()
        response = self.get_response(request)
        seconds = perf_counter() - start
        method, route, status = method_of(request), route_of(request), response.status_code
        observe_request(method, route, status, seconds)
        user = _known_user(request)
        duration_ms = round(seconds * 1000, 1)
        access_logger.info(
            "%s %s %s %.1f ms",
            method,
            route,
            status,
            duration_ms,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": user.pk if user else None,
                "organization_id": getattr(user, "organization_id", None),
            },
        )
        return response


# Content types the API parses in memory; their size is capped by DATA_UPLOAD_MAX_MEMORY_SIZE.
_PARSED_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


def _is_audited(request: HttpRequest) -> bool:
    try:
        view_class = getattr(resolve(request.path_info).func, "cls", None)
    except Resolver404:
        return False
    return isinstance(view_class, type) and issubclass(view_class, AuditedViewMixin)


class BodySizeLimitMiddleware:
    """Refuses oversized JSON/form bodies with 413 before anything reads them.

    Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE only when `request.body` is read, and DRF's
    parsers read the stream directly, so the limit is applied here from Content-Length.
    Raw file uploads (the local storage PUT) are bounded by their own signed size instead.
    An audited view answers the 413 itself (AuditedViewMixin), unread, so the refusal is on
    record with its caller like any other answer of that view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        content_type = request.content_type or ""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit and content_type.startswith(_PARSED_TYPES):
            if _is_audited(request):
                setattr(request, OVERSIZED_BODY_LIMIT, limit)
                return self.get_response(request)
            return error_response(
                413, "payload_too_large", f"The request body exceeds {limit} bytes."
            )
        return self.get_response(request)


# The pages rendered for browsers: the Django admin, Swagger UI and ReDoc. Their scripts are
# files of this app (Django's admin, drf-spectacular-sidecar), none inline, so no nonce is needed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Swagger UI's page and ReDoc (styled-components, at run time) use inline styles.
        "style-src 'self' 'unsafe-inline'",
        # Swagger UI's and ReDoc's icons are data: SVGs.
        "img-src 'self' data:",
        # ReDoc's search index runs in a worker it builds from a blob: URL.
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_BROWSER_PAGES = ("/admin/", "/api/docs/", "/api/redoc/")


class ContentSecurityPolicyMiddleware:
    """Sends `CONTENT_SECURITY_POLICY` with the admin and the API docs pages.

    A response that sets its own policy keeps it. JSON answers of the API load nothing, so
    the header is left off them, and off their hot path. Each directive is the least that
    tests/reliability/test_csp.py needs in Chromium.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(_BROWSER_PAGES):
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


# The Django admin's pages: the only ones signed in by session (pms/urls.py).
ADMIN_PREFIX = "/admin/"


def is_admin_page(request: HttpRequest) -> bool:
    return request.path_info.startswith(ADMIN_PREFIX)


class AdminOnly:
    """Mixed in before a middleware class, runs it for the Django admin's pages only; any other
    request goes past it untouched.

    The API authenticates every request by its bearer token (no session authentication), so
    sessions, the session user, messages, the CSRF check and axes' lockout page serve only the
    admin, and the API skips their work on every request. What the API needs instead is set
    where it is used: DRF views are CSRF-exempt and authenticate by token, the services name
    each history row's user (`_history_user`), and the credential views answer a lockout with
    the error envelope (accounts/serializers.py, accounts/oauth.py).
    """

    get_response: Any  # set by the middleware's own __init__

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_admin_page(request):
            return super().__call__(request)  # type: ignore[misc, no-any-return]
        return self.get_response(request)  # type: ignore[no-any-return]


class AdminSessionMiddleware(AdminOnly, SessionMiddleware):
    pass


class AdminAuthenticationMiddleware(AdminOnly, AuthenticationMiddleware):
    pass


class AdminMessageMiddleware(AdminOnly, MessageMiddleware):
    pass


class AdminAxesMiddleware(AdminOnly, AxesMiddleware):
    pass


class AdminCsrfViewMiddleware(AdminOnly, CsrfViewMiddleware):
    def process_view(
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponseForbidden | None:
        # Django calls this hook itself, not through `__call__`: the check lives here.
        if not is_admin_page(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)
