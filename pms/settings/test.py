"""The settings of the test suite: the base settings plus what every test needs."""

from pms.settings.base import *  # noqa: F403

# Hashing a password the production way takes ~100 ms; the suite creates thousands of users.
# Tests of the hasher itself set their own.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Sent mail goes to django.core.mail.outbox, never to a server.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A fixed key: JWTs and signed URLs made in one test process verify in another (test servers).
SECRET_KEY = "test-secret-key-not-for-production-" + "x" * 32  # noqa: S105
SIMPLE_JWT = {**SIMPLE_JWT, "SIGNING_KEY": SECRET_KEY}  # noqa: F405
# Tasks run in the test's own process even when REDIS_URL names a broker: no test depends on a
# worker being up. The worker tests (tests/pms/celery_worker.py) turn this off while they run one.
CELERY_TASK_ALWAYS_EAGER = True
