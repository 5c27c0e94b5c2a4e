from django.urls import include, path
from rest_framework import filters, pagination, serializers, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import User
from patient.models import Patient
from patient.serializers import PatientSerializer
from pms.health import healthz


class CreatorSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username"]


class PlainPatientSerializer(serializers.ModelSerializer[Patient]):
    created_by = CreatorSerializer(read_only=True)

    class Meta:
        model = Patient
        fields = PatientSerializer.Meta.fields


class PageSizePagination(pagination.PageNumberPagination):
    # The stock class with the client's page size, as the API takes it.
    page_size_query_param = "page_size"
    max_page_size = 100


class PlainPatientViewSet(viewsets.ReadOnlyModelViewSet[Patient]):
    # DRF's stock classes, named here as well as in the settings: a view class reads its
    # defaults when it is defined, and this module may be imported under the API's settings.
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    throttle_classes: list[type] = []
    serializer_class = PlainPatientSerializer
    pagination_class = PageSizePagination
    filter_backends = [filters.SearchFilter]
    search_fields = ["full_name", "email", "mrn"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        # The same scope as the API: the caller's clinic, active patients, newest first.
        return (
            Patient.objects.filter(
                organization_id=self.request.user.organization_id, is_active=True
            )
            .select_related("created_by")
            .order_by("-created_at", "-id")
        )


router = DefaultRouter()
router.register("patients", PlainPatientViewSet, basename="plain-patient")

urlpatterns = [
    # The readiness probe the benchmark waits for, as on the API.
    path("healthz", healthz),
    path("api/patient/", include(router.urls)),
]
