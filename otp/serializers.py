from typing import Any

from rest_framework import serializers

from accounts.validators import PASSWORD_MAX_LENGTH
from otp.models import Purpose


class OTPRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.LOGIN)


class OTPRequestResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    next_request_at = serializers.DateTimeField(
        help_text="When a new code may be requested for this address."
    )
    retry_after_seconds = serializers.IntegerField(
        help_text="Seconds from now until `next_request_at`."
    )
    expires_in_seconds = serializers.IntegerField(help_text="Life of a code once it is sent.")


class OTPVerifySerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    # Any string up to a sane length is a guess; a malformed one is just a wrong code.
    code = serializers.CharField(max_length=32)
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.LOGIN)
    new_password = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        max_length=PASSWORD_MAX_LENGTH,
        style={"input_type": "password"},
        help_text="Required for `password_reset`; Django's password validators apply.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["purpose"] == Purpose.PASSWORD_RESET and not attrs.get("new_password"):
            raise serializers.ValidationError({"new_password": ["This field is required."]})
        if attrs["purpose"] != Purpose.PASSWORD_RESET:
            attrs.pop("new_password", None)
        attrs["code"] = attrs["code"].replace(" ", "")
        return attrs


class EmailVerifiedSerializer(serializers.Serializer):
    verified = serializers.BooleanField()


class PasswordResetDoneSerializer(serializers.Serializer):
    password_reset = serializers.BooleanField()
    refresh_tokens_revoked = serializers.BooleanField()
