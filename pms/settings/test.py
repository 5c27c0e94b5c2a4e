"""The settings of the test suite: the base settings plus what every test needs."""

import os
from urllib.parse import urlsplit, urlunsplit

from pms.settings.base import *  # noqa: F403
from pms.settings.base import CACHES, CELERY_BROKER_URL, CELERY_RESULT_BACKEND, REDIS_URL

# Hashing a password the production way takes ~100 ms; the suite creates thousands of users.
# Tests of the hasher itself set their own.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Sent mail goes to django.core.mail.outbox, never to a server.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A fixed key: JWTs and signed URLs made in one test process verify in another (test servers).
SECRET_KEY = "test-secret-key-not-for-production-" + "x" * 32  # noqa: S105
SIMPLE_JWT = {**SIMPLE_JWT, "SIGNING_KEY": SECRET_KEY}  # noqa: F405
# Tasks run in the test's own process even when REDIS_URL names a broker: no test depends on a
# worker being up. The worker tests (tests/workers.py) turn this off while they run one.
CELERY_TASK_ALWAYS_EAGER = True

# Under pytest-xdist each worker process gets Redis databases of its own: the suite empties its
# cache between tests (FLUSHDB) and the real-worker tests consume the broker's queue, so workers
# sharing one database would disturb each other. Worker N shifts every database number by 2 N,
# in the environment too, so the servers and Celery workers a test starts use the same ones.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_SHIFTED = "PMS_TEST_REDIS_SHIFTED"


def _shifted(url: str) -> str:
    parsed = urlsplit(url)
    database = int(parsed.path.strip("/") or 0) + 2 * int(_XDIST_WORKER.removeprefix("gw"))
    return urlunsplit(parsed._replace(path=f"/{database}"))


if _XDIST_WORKER and not os.environ.get(_SHIFTED):
    os.environ[_SHIFTED] = "1"
    for _name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        if os.environ.get(_name):
            os.environ[_name] = _shifted(os.environ[_name])
    if REDIS_URL:
        REDIS_URL = CACHES["default"]["LOCATION"] = os.environ["REDIS_URL"]
    if CELERY_BROKER_URL:
        CELERY_BROKER_URL = _shifted(CELERY_BROKER_URL)
        CELERY_RESULT_BACKEND = _shifted(CELERY_RESULT_BACKEND)

# The suite commits thousands of times and never needs a commit to outlive a crash of the
# database server: PostgreSQL need not wait for each one to reach the disk (~4 ms each on the CI
# machine). Through libpq's environment, so the servers and workers the tests start do the same.
os.environ.setdefault("PGOPTIONS", "-c synchronous_commit=off")
