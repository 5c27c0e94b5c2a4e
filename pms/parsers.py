"""Request body parsers shared by every view (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"])."""

from typing import Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser. Python's parser raises RecursionError, not ValueError, on a body
    nested deeper than the interpreter's recursion limit: that is invalid input (400), not a
    server error."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ValidationError(
                {"non_field_errors": ["The JSON body is nested too deeply."]}
            ) from None
