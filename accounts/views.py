from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views

from accounts import serializers
from pms.throttles import AuthRateThrottle


class TokenObtainPairView(jwt_views.TokenObtainPairView):
    """Exchange username and password (JSON or form body) for an access/refresh JWT pair."""

    serializer_class = serializers.TokenObtainPairSerializer
    throttle_classes = [AuthRateThrottle]

    @extend_schema(responses=serializers.TokenPairSerializer)
    def post(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().post(request, *args, **kwargs)


class TokenRefreshView(jwt_views.TokenRefreshView):
    """Rotate a refresh token: returns a new pair; the old refresh token stops working."""

    throttle_classes = [AuthRateThrottle]

    @extend_schema(responses=serializers.TokenPairSerializer)
    def post(self, request: Request, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        return super().post(request, *args, **kwargs)


class TokenBlacklistView(jwt_views.TokenBlacklistView):
    """Log out: the given refresh token is revoked."""

    throttle_classes = [AuthRateThrottle]


class MeView(generics.RetrieveAPIView):
    """The caller's profile, role and organization."""

    serializer_class = serializers.UserSerializer

    def get_object(self):  # type: ignore[no-untyped-def]
        return self.request.user
