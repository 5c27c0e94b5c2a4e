"""OpenAPI generation: every operation documents the error envelope for the errors it can return."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    status_code = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(help_text="Field errors for 400s; empty otherwise.")
    timestamp = serializers.DateTimeField()
    request_id = serializers.CharField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


_ERROR_DESCRIPTIONS = {
    "400": "Invalid input (field details in `error.details`).",
    "401": "Missing, invalid or expired credentials.",
    "403": "Authenticated, but the role does not allow this.",
    "404": "Not found, or not in the caller's organization.",
    "409": "Conflicts with the resource's current state.",
    "412": "`If-Match` does not match the current version.",
    "413": "Request body too large.",
    "415": "Unsupported media type.",
    "422": "The `Idempotency-Key` was used with another request body.",
    "429": "Too many requests (`throttled`), or too many of the caller's expensive requests at "
    "once (`too_many_concurrent_requests`); see `Retry-After`.",
    "503": "A backing service (database, cache) is unavailable (`service_unavailable`), or a "
    "query ran past its statement timeout (`query_timeout`); retry after `Retry-After`.",
}
_ALWAYS = ("400", "401", "403", "404", "429", "503")
_WITH_BODY = ("413", "415")


class AutoSchema(SpectacularAutoSchema):
    """Adds the envelope for the errors every operation can answer with.

    Views declare the rarer ones (409, 412) themselves through `extend_schema(responses=...)`
    or the `error_responses` attribute, a tuple of status codes.
    """

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = list(_ALWAYS) + list(getattr(self.view, "error_responses", ()))
        if self.method in ("POST", "PUT", "PATCH"):
            codes += _WITH_BODY
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorEnvelopeSerializer, code)
                response["description"] = _ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses
