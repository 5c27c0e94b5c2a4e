from rest_framework.routers import SimpleRouter

from otp.views import OTPViewSet

router = SimpleRouter()
router.register("", OTPViewSet, basename="otp")

urlpatterns = router.urls
