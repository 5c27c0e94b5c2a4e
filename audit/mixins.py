"""Auditing for DRF views: mix `AuditedViewMixin` into a view and every response it gives —
success, validation failure, 401, 403, 404, 413, 415, 429 — is recorded once."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.http import FileResponse, HttpResponseBase
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import AuditUnavailable, audit_record
from pms.exceptions import PayloadTooLarge

# Query parameters and body fields are recorded by name only: their values may be PHI.
_WRITE_METHODS = {"POST", "PUT", "PATCH"}
# Set by pms.middleware.BodySizeLimitMiddleware on a body this view must refuse unread: the
# limit it exceeds.
OVERSIZED_BODY_LIMIT = "oversized_body_limit"


def _body(request: Request) -> dict[str, Any]:
    """The parsed body if it is a mapping and parsing already succeeded or can; else empty."""
    if getattr(request, OVERSIZED_BODY_LIMIT, None) is not None:
        return {}
    try:
        data = request.data
    except Exception:  # an unparsable body was already answered; record without it
        return {}
    return data if isinstance(data, dict) else {}


class AuditedViewMixin:
    """Records an audit event for every response of the view.

    Views set `audit_resource` ("patient", "document", "auth", ...). The action is
    `<resource>.<view action>`; the patients concerned are, in order of preference,
    `self.audit_patient_ids` set by the handler, the `audit_patient_key` of each result of a
    list page, or of the returned object. A handler may also set `self.audit_actor` (sign-in
    views, whose caller is anonymous until they succeed).

    Views that read or change patient data set `patient_data = True`. Their trail fails
    closed: when the event cannot be written the answer is a 503 `audit_unavailable` and
    none of the data, and a write (any unsafe method) commits in one transaction with its
    event, or not at all. Their responses, errors included, carry `Cache-Control: no-store`.
    Reads add no query: they record after the view, as other views do.
    """

    audit_resource: str = ""
    patient_data: bool = False
    # The request is an unsafe one of a patient-data view: its transaction is open.
    _audit_in_transaction = False
    # The event of a failed write, recorded once its transaction has rolled back.
    _audit_deferred: dict[str, Any] | None = None
    # The action name for views without router actions (APIView); defaults to the router action.
    audit_action: str | None = None
    # Key of a returned object that holds the patient id: "id" for patients, "patient" for
    # documents.
    audit_patient_key: str | None = None

    def get_audit_action(self, request: Request) -> str:
        action = self.audit_action or getattr(self, "action", None) or str(request.method).lower()
        return f"{self.audit_resource}.{action}"

    def get_audit_patient_ids(self, response: Response) -> Iterable[Any]:
        explicit = getattr(self, "audit_patient_ids", None)
        if explicit is not None:
            return explicit
        key = self.audit_patient_key
        data = getattr(response, "data", None)  # file responses carry no data
        if key is None or response.status_code >= 400 or not isinstance(data, dict):
            return ()
        if isinstance(data.get("results"), list):
            return [row.get(key) for row in data["results"] if isinstance(row, dict)]
        return [data.get(key)]

    def get_audit_path(self, request: Request) -> str:
        return request.path

    def get_audit_details(self, request: Request, response: Response) -> dict[str, Any]:
        details: dict[str, Any] = {}
        data = getattr(response, "data", None)
        if request.query_params:
            details["params"] = sorted(request.query_params.keys())
        if request.method in _WRITE_METHODS:
            details["fields"] = sorted(str(key) for key in _body(request))
        if response.status_code >= 400 and isinstance(data, dict):
            details["error"] = data.get("error", {}).get("code", "")
        if isinstance(data, dict) and "count" in data:
            details["count"] = data["count"]
        if getattr(self, "idempotent_replay", False):  # pms/idempotency.py
            details["replayed"] = True
        return details

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)  # type: ignore[misc]
        # After authentication, so the refusal names its caller.
        limit = getattr(request, OVERSIZED_BODY_LIMIT, None)
        if limit is not None:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self._audit_in_transaction = self.patient_data and request.method not in SAFE_METHODS
        if not self._audit_in_transaction:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc, no-any-return]
        try:
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        except AuditUnavailable as exc:
            # The write was rolled back with its unwritten event.
            self._audit_in_transaction = False
            return self._refuse(self.request, exc)  # type: ignore[attr-defined]
        self._audit_in_transaction = False
        if self._audit_deferred is not None:
            return self._record(
                self.request,  # type: ignore[attr-defined]
                response,
                self._audit_deferred,
            )
        return response  # type: ignore[no-any-return]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if self.patient_data:
            response["Cache-Control"] = "no-store"
        actor = getattr(self, "audit_actor", None)
        attempted = _body(request).get("username", "")
        event = {
            "action": self.get_audit_action(request),
            "resource_type": self.audit_resource,
            "status_code": response.status_code,
            "resource_id": kwargs.get("pk", ""),
            "patient_ids": self.get_audit_patient_ids(response),
            "actor": actor,
            "actor_username": str(attempted),
            "details": self.get_audit_details(request, response),
            "path": self.get_audit_path(request),
        }
        if self._audit_in_transaction and response.status_code >= 400:
            # DRF rolls back only ATOMIC_REQUESTS transactions; this one is the mixin's. The
            # event of a failed write is recorded after the rollback, by dispatch.
            transaction.set_rollback(True)
            self._audit_deferred = event
            return response
        return self._record(request, response, event)

    def _record(self, request: Request, response: Any, event: dict[str, Any]) -> Any:
        # An error answer shows no patient data, and its own code (a 503 of a database outage,
        # a 404) says more than a second 503 would: only answers with data fail closed.
        fail_closed = self.patient_data and response.status_code < 400
        try:
            audit_record(request=request, fail_closed=fail_closed, **event)
        except AuditUnavailable as exc:
            if self._audit_in_transaction:
                raise  # dispatch rolls the write back
            if isinstance(response, FileResponse):
                response.file_to_stream.close()  # type: ignore[union-attr]
            return self._refuse(request, exc)
        return response

    def _refuse(self, request: Request, exc: AuditUnavailable) -> Response:
        """The 503 that replaces an answer whose event could not be written; the refusal is
        recorded if the database takes it now."""
        response = self.handle_exception(exc)  # type: ignore[attr-defined]
        response = super().finalize_response(request, response)  # type: ignore[misc]
        response["Cache-Control"] = "no-store"
        audit_record(
            request=request,
            action=self.get_audit_action(request),
            resource_type=self.audit_resource,
            status_code=response.status_code,
            resource_id=self.kwargs.get("pk", ""),  # type: ignore[attr-defined]
            details={"error": AuditUnavailable.default_code},
            path=self.get_audit_path(request),
        )
        return response
