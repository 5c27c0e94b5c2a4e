"""Request correlation: every request gets an id, echoed in `X-Request-ID` and in every log line."""

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from audit.mixins import OVERSIZED_BODY_LIMIT, AuditedViewMixin
from pms.context import request_id_var
from pms.exceptions import error_response

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
