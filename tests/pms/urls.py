"""Test-only routes that raise the failures a real view can meet, mounted beside the real ones."""

from typing import NoReturn

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework import exceptions
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request

from pms import urls as pms_urls


@api_view(["GET"])
@permission_classes([AllowAny])
def broken(request: Request) -> NoReturn:
    raise RuntimeError("patient Jane Roe, 1970-01-01")  # PHI that must never reach the client


@api_view(["GET"])
@permission_classes([AllowAny])
def forbidden(request: Request) -> NoReturn:
    raise exceptions.PermissionDenied()


@api_view(["GET"])
@permission_classes([AllowAny])
def database_down(request: Request) -> NoReturn:
    raise OperationalError("could not connect to server")


@api_view(["POST"])
@permission_classes([AllowAny])
def echo(request: Request) -> HttpResponse:
    return HttpResponse(str(len(request.data)))


@api_view(["POST"])
@authentication_classes([])  # the forged bearer token of the test must reach the error
@permission_classes([AllowAny])
def broken_with_phi(request: Request) -> NoReturn:
    patient_name = request.data["full_name"]  # type: ignore[call-overload]  # a local: PHI
    raise RuntimeError(f"cannot file the report of {patient_name}")


def plain_django_view(request: HttpRequest) -> NoReturn:
    raise RuntimeError("outside DRF")


urlpatterns = [
    path("api/test/broken/", broken),
    path("api/test/forbidden/", forbidden),
    path("api/test/database-down/", database_down),
    path("api/test/echo/", echo),
    path("api/test/broken-with-phi/", broken_with_phi),
    path("test/plain/", plain_django_view),
    path("", include("pms.urls")),
]

# The project's own error handlers, so this URLconf answers like the real one.
handler400 = pms_urls.handler400
handler500 = pms_urls.handler500
