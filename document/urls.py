from django.urls import path
from rest_framework.routers import SimpleRouter

from document import views

router = SimpleRouter()
router.register("documents", views.DocumentViewSet, basename="document")

urlpatterns = [
    path("sign-upload/", views.SignUploadView.as_view(), name="document-sign-upload"),
    path("confirm/", views.ConfirmUploadView.as_view(), name="document-confirm"),
    # The local storage backend's signed file URLs (upload PUT, download GET).
    path("files/<str:token>/", views.LocalFileView.as_view(), name="document-file"),
    *router.urls,
]
