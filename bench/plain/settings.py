"""The plain build's settings: the app's (apps, database, cache, JWT) with the stock request
path in place of its own."""

from pms.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.plain.urls"

# startproject's stock middleware, written out: the app's own list may change (and lose some of
# these for the API), the baseline must not.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# DRF's stock defaults (the view names its classes): its own exception handler, parsers and
# schema, no throttle.
REST_FRAMEWORK = {"PAGE_SIZE": 20}
