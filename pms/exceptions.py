"""The one error envelope of the API (docs/architecture.md, "Errors") and the domain errors that
app code raises.

Every 4xx/5xx the API returns looks like::

    {"error": {"status_code": 400, "code": "validation_error",
               "message": "Bad request - Invalid input data",
               "details": {"field": ["..."]}, "timestamp": "...", "request_id": "..."}}

`exception_handler` renders it for everything raised inside a DRF view: it delegates to DRF's
own handler first (which rolls back the transaction and sets `WWW-Authenticate`/`Retry-After`),
then reshapes the body. Errors outside DRF views (unknown `/api/` paths, 500s, the readiness
probe) use `error_response` directly.
"""

import logging
import math
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from kombu.exceptions import OperationalError as BrokerUnreachable
from psycopg2.errors import QueryCanceled
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from pms.context import current_request_id

logger = logging.getLogger("pms.errors")

VALIDATION_MESSAGE = "Bad request - Invalid input data"


class ApplicationError(exceptions.APIException):
    """Base of the domain errors: subclasses set `status_code`, `default_code`, `default_detail`.

    `details` become the envelope's `details` as given (DRF would turn every value into a
    string); they must hold no PHI.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "application_error"
    default_detail = "The request could not be completed."

    def __init__(
        self, detail: Any = None, code: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail, code)
        if details is not None:
            message = str(self.detail)
            body = {"detail": message, "code": code or self.default_code, **details}
            self.detail = cast(Any, body)


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PreconditionFailed(ApplicationError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The resource has changed since you read it (If-Match does not match)."


class ServiceUnavailable(ApplicationError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is temporarily unavailable. Try again shortly."


def bounded_retry_after(timeout_ms: int | None = None) -> int:
    """Seconds after which a refused expensive request (pms/bounded.py) may succeed: the
    queries running now end within the statement timeout of their request class (by default
    the searches')."""
    if timeout_ms is None:
        timeout_ms = settings.EXPENSIVE_STATEMENT_TIMEOUT_MS
    return max(1, math.ceil(timeout_ms / 1000))


class QueryTimeout(ServiceUnavailable):
    """A query ran past its statement timeout (pms/bounded.py) and PostgreSQL cancelled it."""

    default_code = "query_timeout"
    default_detail = "The query took too long and was stopped. Narrow it, or retry shortly."

    def __init__(self, timeout_ms: int | None = None) -> None:
        super().__init__()
        self.wait = bounded_retry_after(timeout_ms)  # DRF's handler sends it as Retry-After


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


def error_body(
    status_code: int, code: str, message: str, details: Any = None
) -> dict[str, dict[str, Any]]:
    return {
        "error": {
            "status_code": status_code,
            "code": code,
            "message": message,
            "details": details if details is not None else {},
            "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
            "request_id": current_request_id(),
        }
    }


def error_response(status_code: int, code: str, message: str, details: Any = None) -> JsonResponse:
    """An envelope response for code paths outside DRF views."""
    return JsonResponse(error_body(status_code, code, message, details), status=status_code)


# The database, Redis (throttles, cached users) or the task broker is unreachable or restarting: a
# retryable 503, never a stack trace. Throttles are not skipped while Redis is away.
_UNREACHABLE = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerUnreachable,
)


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    # Django wraps the driver's error: a cancelled statement is an OperationalError too.
    if isinstance(exc, OperationalError) and isinstance(exc.__cause__, QueryCanceled):
        return QueryTimeout()
    if isinstance(exc, _UNREACHABLE):
        return ServiceUnavailable()
    return None


def _code_and_message(exc: exceptions.APIException) -> tuple[str, str, Any]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(detail, list):
            detail = {"non_field_errors": detail}
        return "validation_error", VALIDATION_MESSAGE, detail
    if isinstance(detail, dict):
        # simplejwt's InvalidToken: {"detail": ..., "code": ..., "messages": [...]}
        message = str(detail.get("detail", exc.default_detail))
        code = str(detail.get("code", exc.default_code))
        rest = {key: value for key, value in detail.items() if key not in ("detail", "code")}
        return code, message, rest
    if isinstance(detail, list):
        return str(exc.default_code), " ".join(str(item) for item in detail), {}
    code = getattr(detail, "code", None) or exc.default_code
    return str(code), str(detail), {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception raised in a view becomes the envelope."""
    converted = _as_api_exception(exc)
    if converted is not None:
        logger.warning("request failed: %s", type(exc).__name__)
        exc = converted
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API error: a bug. Log it with its traceback, answer a bare 500.
        logger.error("unhandled error", exc_info=exc)
        set_rollback()
        return Response(
            error_body(500, "server_error", "Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.APIException):
        code, message, details = _code_and_message(exc)
    else:  # Http404 / Django PermissionDenied, already turned into a response by DRF
        code = "not_found" if response.status_code == 404 else "permission_denied"
        message = str(response.data.get("detail", "")) if isinstance(response.data, dict) else ""
        details = {}
    response.data = error_body(response.status_code, code, message, details)
    return response


@csrf_exempt  # an unsafe method on an unknown path is a 404, not the CSRF failure page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/ answer 404 in the envelope, whatever DEBUG says."""
    return error_response(404, "not_found", "Not found.")


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: a 500 outside a DRF view (middleware, Django views), still in the envelope."""
    return error_response(500, "server_error", "Internal server error.")


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    """handler400: Django-level bad requests (e.g. a disallowed Host header)."""
    return error_response(400, "bad_request", "Bad request.")
