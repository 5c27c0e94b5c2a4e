from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts import oauth, serializers
from audit.mixins import AuditedViewMixin
from pms.schema import ErrorEnvelopeSerializer
from pms.throttles import AuthRateThrottle


class AuditedTokenView(AuditedViewMixin, jwt_views.TokenViewBase):
    """simplejwt's token views, on record: who signed in, refreshed or logged out, or failed to."""

    throttle_classes = [AuthRateThrottle]
    audit_resource = "auth"

    def post(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        self.audit_actor = getattr(serializer, "user", None)
        return Response(serializer.validated_data)


@extend_schema_view(post=extend_schema(responses=serializers.TokenPairSerializer))
class TokenObtainPairView(AuditedTokenView):
    """Exchange username and password (JSON or form body) for an access/refresh JWT pair."""

    serializer_class = serializers.TokenObtainPairSerializer
    audit_action = "token_obtain"


@extend_schema_view(post=extend_schema(responses=serializers.TokenPairSerializer))
class TokenRefreshView(AuditedTokenView):
    """Rotate a refresh token: returns a new pair; the old refresh token stops working."""

    serializer_class = serializers.TokenRefreshSerializer
    audit_action = "token_refresh"


@extend_schema_view(post=extend_schema(responses={200: None}))
class TokenBlacklistView(AuditedTokenView):
    """Log out: the given refresh token is revoked."""

    serializer_class = serializers.TokenBlacklistSerializer
    audit_action = "logout"


class MeView(generics.RetrieveAPIView):
    """The caller's profile, role and organization."""

    serializer_class = serializers.UserSerializer

    def get_object(self):  # type: ignore[no-untyped-def]
        return self.request.user


class OAuthLoginView(AuditedViewMixin, generics.GenericAPIView):
    """Sign in with Google: exchange a Google ID token (preferred) or access token for our JWT
    pair and the user.

    The Google account signs in the user it is linked to; a first sign-in links it to the one
    active user whose email equals the Google account's verified email. Nobody is created:
    401 for a token that fails verification, 403 when no user may be signed in with it.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]
    serializer_class = serializers.OAuthLoginSerializer
    audit_resource = "auth"
    audit_action = "oauth_login"

    def get_authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with this header) rather than 403 for a rejected Google token.
        return 'Bearer realm="api"'

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="OAuthLogin",
            serializers=[
                serializers.OAuthIdTokenLoginSerializer,
                serializers.OAuthAccessTokenLoginSerializer,
            ],
            resource_type_field_name=None,
        ),
        responses={
            200: serializers.AuthResultSerializer,
            401: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="The Google token is invalid, expired or issued to another "
                "application (`invalid_google_token`), or its email is not verified "
                "(`google_email_not_verified`).",
            ),
            403: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="No user may sign in with this Google account: "
                "`google_account_not_linked`, `google_account_ambiguous`, "
                "`google_identity_conflict`, `google_domain_not_allowed`, `account_inactive`.",
            ),
            503: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="Google is unreachable (`google_unavailable`) or sign-in is not "
                "configured (`google_sign_in_not_configured`).",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = oauth.google_sign_in(request=request, **serializer.validated_data)
        self.audit_actor = user
        return Response(serializers.AuthResultSerializer.for_user(user).data)
