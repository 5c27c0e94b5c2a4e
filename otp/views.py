import math

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.serializers import AuthResultSerializer
from audit.mixins import AuditedViewMixin
from otp import serializers, services
from otp.models import Purpose
from pms.throttles import AuthRateThrottle

REQUEST_ACCEPTED = "If an active account has this email address, a code has been sent to it."


class OTPViewSet(AuditedViewMixin, viewsets.GenericViewSet):
    """Sign-in, email verification and password reset with a one-time code sent by email."""

    # Every request and its outcome lands in the audit log as otp.generate / otp.verify (field
    # names and the error code only: never the email or the code).
    audit_resource = "otp"

    # Anonymous endpoints: a stale Bearer header must not turn them into a 401.
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    # Per client IP on top of the per-address limits in the service.
    throttle_classes = [AuthRateThrottle]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "verify":
            return serializers.OTPVerifySerializer
        return serializers.OTPRequestSerializer

    @extend_schema(
        operation_id="otp_generate",
        request=serializers.OTPRequestSerializer,
        responses={202: serializers.OTPRequestResultSerializer},
        description=(
            "Emails a one-time code to the active account with this address. The answer is the "
            "same whether or not such an account exists; an unknown address gets no email. "
            "Requests per address are limited by a cooldown and an hourly cap (429 with "
            "`Retry-After`)."
        ),
    )
    @action(detail=False, methods=["post"])
    def generate(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.otp_request(**serializer.validated_data)
        wait = (result.next_request_at - timezone.now()).total_seconds()
        body = serializers.OTPRequestResultSerializer(
            {
                "detail": REQUEST_ACCEPTED,
                "next_request_at": result.next_request_at,
                "retry_after_seconds": max(0, math.ceil(wait)),
                "expires_in_seconds": settings.OTP_TTL_SECONDS,
            }
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="otp_verify",
        request=serializers.OTPVerifySerializer,
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="OTPVerifyResult",
                    serializers=[
                        AuthResultSerializer,
                        serializers.EmailVerifiedSerializer,
                        serializers.PasswordResetDoneSerializer,
                    ],
                    resource_type_field_name=None,
                ),
                description=(
                    "`login`: the JWT pair and the user; `verify_email`: `{verified: true}`; "
                    "`password_reset`: the password is changed and every refresh token of the "
                    "user revoked."
                ),
            )
        },
        description=(
            "Checks a code. Every failure (wrong, expired, used, out of tries, unknown email) "
            "answers the same 400 with code `invalid_code`."
        ),
    )
    @action(detail=False, methods=["post"])
    def verify(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        purpose = serializer.validated_data["purpose"]
        user = services.otp_verify(**serializer.validated_data)
        self.audit_actor = user
        output: BaseSerializer
        if purpose == Purpose.LOGIN:
            output = AuthResultSerializer.for_user(user)
        elif purpose == Purpose.VERIFY_EMAIL:
            output = serializers.EmailVerifiedSerializer({"verified": True})
        else:
            output = serializers.PasswordResetDoneSerializer(
                {"password_reset": True, "refresh_tokens_revoked": True}
            )
        return Response(output.data)
