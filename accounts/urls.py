from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/token/", views.TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", views.TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/token/blacklist/", views.TokenBlacklistView.as_view(), name="token_blacklist"),
    path("accounts/me/", views.MeView.as_view(), name="me"),
    path("accounts/oauth-login/", views.OAuthLoginView.as_view(), name="oauth_login"),
]
