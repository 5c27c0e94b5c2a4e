from rest_framework.routers import SimpleRouter

from audit.views import AuditEventViewSet

router = SimpleRouter()
router.register("events", AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
