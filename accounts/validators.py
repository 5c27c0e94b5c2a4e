from typing import Any

from django.core.exceptions import ValidationError

# Sign-in refuses longer passwords before any work is done on them (accounts/serializers.py),
# so no path may set one. NIST SP 800-63B asks that at least 64 characters be allowed.
PASSWORD_MAX_LENGTH = 128


class MaximumLengthValidator:
    """A password validator (AUTH_PASSWORD_VALIDATORS): at most PASSWORD_MAX_LENGTH characters."""

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > PASSWORD_MAX_LENGTH:
            raise ValidationError(
                f"This password is too long. It must contain at most {PASSWORD_MAX_LENGTH} "
                "characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password must contain at most {PASSWORD_MAX_LENGTH} characters."
