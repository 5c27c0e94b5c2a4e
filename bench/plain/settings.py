"""The plain build's settings: the app's (apps, database, cache, JWT) with the stock request
path in place of its own, and its own patient table."""

from pms.settings.base import *  # noqa: F403

# Its patients are `plain.patient_patient`, the same rows without the API's indexes
# (bench/generate.py, copy_for_plain_build); every other table is the API's.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["OPTIONS"]["options"] = "-c search_path=plain,public"  # noqa: F405

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
