"""OpenAPI for the FHIR endpoints: bodies are `application/fhir+json`, errors OperationOutcome
(not the REST envelope of pms/schema.py)."""

from typing import Any

from drf_spectacular.openapi import AutoSchema

FHIR_RESOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
    "description": "A FHIR R4 resource (http://hl7.org/fhir/R4/).",
}
OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_ERRORS = {
    "400": "Invalid or unknown parameter (`issue.expression` names it).",
    "401": "Missing, invalid or expired credentials.",
    "403": "Authenticated, but the role does not allow this.",
    "404": "Not found, or not in the caller's clinic.",
    "405": "FHIR here is read-only.",
    "406": "Only application/fhir+json is served (XML is not).",
    "409": "The document's file is not available (not uploaded, scan pending, quarantined).",
    "410": "The patient is archived.",
    "429": "Too many requests; see `Retry-After`.",
    "500": "The export failed.",
    "503": "A backing service is unavailable; retry.",
}
_ALWAYS = ("400", "401", "403", "404", "406", "429", "503")


class FHIRAutoSchema(AutoSchema):
    """Every FHIR operation documents the OperationOutcome of the errors it can answer with;
    views add rarer ones in `error_responses`."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in (*_ALWAYS, *getattr(self.view, "error_responses", ())):
            if code not in responses:
                response = self._get_response_for_code(OPERATION_OUTCOME, code)
                response["description"] = _ERRORS[code]
                responses[code] = response
        return responses
