"""Auditing for DRF views: mix `AuditedViewMixin` into a view and every response it gives —
success, validation failure, 401, 403, 404, 429 — is recorded once."""

from collections.abc import Iterable
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import audit_record

# Query parameters and body fields are recorded by name only: their values may be PHI.
_WRITE_METHODS = {"POST", "PUT", "PATCH"}


def _body(request: Request) -> dict[str, Any]:
    """The parsed body if it is a mapping and parsing already succeeded or can; else empty."""
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
    """

    audit_resource: str = ""
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

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        actor = getattr(self, "audit_actor", None)
        attempted = _body(request).get("username", "")
        audit_record(
            request=request,
            action=self.get_audit_action(request),
            resource_type=self.audit_resource,
            status_code=response.status_code,
            resource_id=kwargs.get("pk", ""),
            patient_ids=self.get_audit_patient_ids(response),
            actor=actor,
            actor_username=str(attempted),
            details=self.get_audit_details(request, response),
            path=self.get_audit_path(request),
        )
        return response
