"""Settings for the PMS API, driven by the environment (12-factor, django-environ).

With nothing set, the embedded defaults run the app on a fresh machine: SQLite in var/,
local-memory cache, console email, local document storage, DEBUG on. Production sets
DEBUG=false and the variables listed in .env.example. Every variable NAME may also be read
from a file named by NAME_FILE (mounted secrets).
"""

import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS

from pms.version import VERSION

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"

env = environ.FileAwareEnv()
# An optional .env file next to manage.py; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: `make run` keeps a random key in var/ so JWTs survive its restarts;
    # without one, each process makes its own (importing the settings writes nothing).
    key_file = VAR_DIR / "dev_secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    return secrets.token_urlsafe(64)


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    # django.contrib.admin, with the site of pms/admin_site.py.
    "pms.admin_site.SiteAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # The trigram lookups and OpClass in index expressions (pms/indexes.py); inert on SQLite.
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "simple_history",
    "social_django",
    # Platform records of the project itself (failed background tasks).
    "pms",
    "accounts",
    "patient",
    "document",
    "otp",
    "audit",
    "fhir",
]

MIDDLEWARE = [
    "pms.middleware.RequestIDMiddleware",
    # Inside the request id, around everything else: its line and timing cover the whole answer.
    "pms.middleware.AccessLogMiddleware",
    "pms.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "pms.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # "Admin..." layers run for /admin/ only (pms.middleware.AdminOnly): the API signs in by
    # bearer token and needs no session, CSRF check, messages or lockout page. No history
    # middleware: the services name the user of every history row.
    "pms.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "pms.middleware.AdminCsrfViewMiddleware",
    "pms.middleware.AdminAuthenticationMiddleware",
    "pms.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the failed logins of every view above it.
    "pms.middleware.AdminAxesMiddleware",
]

# These checks look for axes' and Django's CSRF middleware by dotted path only; they are
# pms.middleware.AdminAxesMiddleware and AdminCsrfViewMiddleware, for the admin, the one part
# signed in by cookie (tests/pms/test_admin_only_middleware.py).
SILENCED_SYSTEM_CHECKS = ["axes.W002", "security.W003"]

ROOT_URLCONF = "pms.urls"
WSGI_APPLICATION = "pms.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates: the ReDoc page without inline script (pms/urls.py).
        "DIRS": [BASE_DIR / "pms" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Keep connections open between requests and check them before reuse, so a database restart
# costs one failed request per connection at most, never a stuck worker.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    # Fail fast when the server is unreachable instead of hanging a worker.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", 3))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttles, lockouts, certificate caches) ------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # django-redis, with each operation timed for /metrics (pms/metrics.py).
            "BACKEND": "pms.metrics.TimedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pms",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "pms.metrics.TimedLocMemCache"}}

# --- Background work (Celery, pms/celery.py) --------------------------------------------------
# The broker and the result store; both default to REDIS_URL. Give the broker a Redis database of
# its own in production, apart from the cache's.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
# Without a broker (the embedded default) a task runs in the process that enqueues it, right
# after the transaction commits: `make run` needs no worker.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task whose worker died unannounced goes to another worker after this many seconds. It must
# exceed the longest task (time limit 150 s) plus its longest retry wait (64 s), or a slow task is
# handed out twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=600),
    "socket_connect_timeout": 2,
}
# With late acknowledgement, a worker takes one task at a time, so a busy worker holds no queue.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Maintenance, run by `celery -A pms beat` (exactly one beat process per deployment).
CELERY_BEAT_SCHEDULE = {
    "purge-stale-uploads": {
        "task": "document.purge_stale_uploads",
        "schedule": crontab(minute=20),
    },
    "cleanup-otp": {
        "task": "otp.cleanup",
        "schedule": crontab(minute=40),
    },
    # Hourly: a no-op while the partitions exist, and events the DEFAULT partition starts
    # catching (audit/partitions.py) move to their month within the hour.
    "ensure-audit-partitions": {
        "task": "audit.ensure_partitions",
        "schedule": crontab(minute=50),
    },
    "expire-fhir-exports": {
        "task": "fhir.expire_exports",
        "schedule": crontab(minute=10),
    },
}

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out account before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "accounts.oauth.GoogleOAuth2",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.MaximumLengthValidator"},
]

# Sign-in lockouts (accounts/lockout.py), in the database so every app instance sees them.
# Short lock: this many failed password sign-ins for one username from one client address lock
# that pair (not the user elsewhere) for AXES_COOLOFF_MINUTES (django-axes).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The client address as DRF's throttles and the audit trail see it (NUM_PROXIES), never a
# header the client picks.
AXES_CLIENT_IP_CALLABLE = "audit.services._client_ip"
# Keeps the account lock next to axes' own.
AXES_HANDLER = "accounts.lockout.LockoutHandler"
# An attempt refused by a lock tests no password: it neither counts nor extends the lock.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Account lock: this many consecutive failures from any address lock the account everywhere
# until an OTP password reset (NIST SP 800-63B allows at most 100).
ACCOUNT_LOCKOUT_FAILURES = env.int("ACCOUNT_LOCKOUT_FAILURES", default=100)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_REFRESH_MINUTES", default=1440)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a digest of the password hash (an MD5 of a salted hash: nothing to crack) and
    # die once it differs, so a password change ends every session it started, even one a
    # revocation missed (accounts/authentication.py).
    "CHECK_REVOKE_TOKEN": True,
}

# --- REST framework ---------------------------------------------------------------------------
# Number of trusted proxies in front of the app; 0 means REMOTE_ADDR is the client and no
# X-Forwarded-* header is believed.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "pms.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["pms.renderers.ORJSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_FILTER_BACKENDS": [
        "pms.filters.FilterBackend",
    ],
    "DEFAULT_PAGINATION_CLASS": "pms.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        # A fixed-window counter: one cache round trip per request (pms/throttles.py).
        "pms.throttles.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="60/min"),
        "user": env.str("THROTTLE_USER", default="1200/min"),
        # Token obtain, refresh, OAuth login and OTP: per client IP.
        "auth": env.str("THROTTLE_AUTH", default="20/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "EXCEPTION_HANDLER": "pms.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "pms.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Expensive requests (ranked search, document stats, FHIR search and export kick-off;
# pms/bounded.py): PostgreSQL cancels each of their queries past this many ms (503
# query_timeout; 0: no timeout), and one user runs at most this many at once across all
# instances (429 too_many_concurrent_requests; 0: no limit).
EXPENSIVE_STATEMENT_TIMEOUT_MS = env.int("EXPENSIVE_STATEMENT_TIMEOUT_MS", default=2000)
# The same for document stats: a clinic's totals are cached until its next write, and the one
# query that fills the cache reads every document of the clinic (0.5-2 s at 600,000 documents).
STATS_STATEMENT_TIMEOUT_MS = env.int("STATS_STATEMENT_TIMEOUT_MS", default=10000)
EXPENSIVE_CONCURRENCY_PER_USER = env.int("EXPENSIVE_CONCURRENCY_PER_USER", default=2)
# Parallel workers per query of those requests (PostgreSQL's max_parallel_workers_per_gather,
# whose default is 2): at 0 one expensive request uses one core, and the others' requests keep
# the rest (docs/performance.md, "W11: parallel query").
EXPENSIVE_PARALLEL_WORKERS = env.int("EXPENSIVE_PARALLEL_WORKERS", default=0)
if EXPENSIVE_PARALLEL_WORKERS < 0:
    # PostgreSQL would refuse it on every bounded request.
    raise ImproperlyConfigured("EXPENSIVE_PARALLEL_WORKERS must be 0 or more.")

SPECTACULAR_SETTINGS = {
    "TITLE": "Patient Management System API",
    "DESCRIPTION": (
        "Patients and their medical documents for clinics. Authenticate with "
        "`POST /api/auth/token/` and send `Authorization: Bearer <access>`. Every error uses "
        "the envelope `{error: {status_code, code, message, details, timestamp, request_id}}`."
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI keeps the bearer token in the browser's local storage across reloads.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True},
    "SCHEMA_PATH_PREFIX": r"/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": (
        ["rest_framework.permissions.AllowAny"]
        if env.bool("API_DOCS_PUBLIC", default=True)
        else ["rest_framework.permissions.IsAdminUser"]
    ),
    "ENUM_NAME_OVERRIDES": {},
}

# --- FHIR R4 (docs/fhir.md) --------------------------------------------------------------------
# Hours a finished Bulk Data export's files stay downloadable before they are deleted.
FHIR_EXPORT_EXPIRY_HOURS = env.int("FHIR_EXPORT_EXPIRY_HOURS", default=24)

# --- CORS for the clinic's single-page app ----------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_EXPOSE_HEADERS = [
    "ETag",
    "X-Request-ID",
    "Retry-After",
    "X-Count-Exact",
    "Idempotent-Replayed",
]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "if-match",
    "x-request-id",
]

# --- Security ---------------------------------------------------------------------------------
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto header; with no proxy, any client
# could send it and pass for HTTPS.
if NUM_PROXIES >= 1:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancer probes speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Requests larger than this (non-file bodies) are refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=(
        "django.core.mail.backends.smtp.EmailBackend"
        if env.str("EMAIL_HOST", default="")
        else "django.core.mail.backends.console.EmailBackend"
    ),
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="PMS <no-reply@pms.local>")

# --- Patients ---------------------------------------------------------------------------------
# Region (ISO 3166 code, e.g. "US") for phone numbers written without +country code; empty
# means such numbers are refused.
PATIENT_PHONE_DEFAULT_REGION = env.str("PATIENT_PHONE_DEFAULT_REGION", default="")
# Require phones libphonenumber knows as valid; off: any E.164-shaped number with a known
# country code is accepted (the seed client's +1234567890 among them).
PATIENT_PHONE_STRICT = env.bool("PATIENT_PHONE_STRICT", default=False)
# Duplicate score (0-1, patient/duplicates.py) from which a registration answers 409
# possible_duplicate; lower catches more duplicates and asks about more namesakes.
PATIENT_DUPLICATE_THRESHOLD = env.float("PATIENT_DUPLICATE_THRESHOLD", default=0.6)

# --- Documents --------------------------------------------------------------------------------
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="local")
GCS_BUCKET_NAME = env.str("GCS_BUCKET_NAME", default="")
# Where infected objects are moved (gcs backend; required there with the scanner on).
GCS_QUARANTINE_BUCKET = env.str("GCS_QUARANTINE_BUCKET", default="")
# Bulk Data export files (gcs backend; docs/fhir.md). Empty: GCS_BUCKET_NAME, under exports/.
# A bucket of their own, without versioning or retention, makes an expired export really gone.
GCS_EXPORT_BUCKET = env.str("GCS_EXPORT_BUCKET", default="")
GCS_CREDENTIALS_PATH = env.str("GCS_CREDENTIALS_PATH", default="")
STORAGE_EMULATOR_HOST = env.str("STORAGE_EMULATOR_HOST", default="")
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=50 * 1024 * 1024)
DOCUMENT_UPLOAD_URL_MINUTES = env.int("DOCUMENT_UPLOAD_URL_MINUTES", default=15)
DOCUMENT_DOWNLOAD_URL_MINUTES = env.int("DOCUMENT_DOWNLOAD_URL_MINUTES", default=5)
# Content types a document may have: PDF, PNG, JPEG, TIFF, plain text, DICOM, DOCX.
DOCUMENT_ALLOWED_CONTENT_TYPES = env.list(
    "DOCUMENT_ALLOWED_CONTENT_TYPES",
    default=[
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/tiff",
        "text/plain",
        "application/dicom",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ],
)
# Malware scan of every confirmed document: "clamd", or "off" (the embedded default: documents
# are `skipped` and downloadable unscanned; `check --deploy` warns when DEBUG is off).
DOCUMENT_SCANNER = env.str("DOCUMENT_SCANNER", default="off")
# clamd's TCP address, or its Unix socket (CLAMD_SOCKET wins when both are set).
CLAMD_HOST = env.str("CLAMD_HOST", default="")
CLAMD_PORT = env.int("CLAMD_PORT", default=3310)
CLAMD_SOCKET = env.str("CLAMD_SOCKET", default="")
# Pending (never confirmed) documents older than this are removed by `purge_stale_uploads`.
DOCUMENT_PENDING_MAX_AGE_HOURS = env.int("DOCUMENT_PENDING_MAX_AGE_HOURS", default=24)

# --- One-time codes by email (otp app) ---
# Key of the HMACs that store codes and identify addresses in the rate counters; empty = derived
# from SECRET_KEY (rotating either invalidates the codes in flight, nothing else).
OTP_HMAC_KEY = env.str("OTP_HMAC_KEY", default="")
# Life of a code.
OTP_TTL_SECONDS = env.int("OTP_TTL_SECONDS", default=600)
# Wrong guesses that kill a code (counted atomically in the database).
OTP_MAX_ATTEMPTS = env.int("OTP_MAX_ATTEMPTS", default=5)
# Minimum gap between two code requests for one address, known or not.
OTP_RESEND_COOLDOWN_SECONDS = env.int("OTP_RESEND_COOLDOWN_SECONDS", default=60)
# Code requests one address may make per hour, known or not.
OTP_HOURLY_LIMIT = env.int("OTP_HOURLY_LIMIT", default=5)

# --- Google sign-in ---------------------------------------------------------------------------
GOOGLE_OAUTH2_CLIENT_ID = env.str("GOOGLE_OAUTH2_CLIENT_ID", default="")
GOOGLE_OAUTH2_CLIENT_SECRET = env.str("GOOGLE_OAUTH2_CLIENT_SECRET", default="")
GOOGLE_OAUTH2_ALLOWED_DOMAINS = env.list("GOOGLE_OAUTH2_ALLOWED_DOMAINS", default=[])
# Sign-in links existing users only, never creates one (accounts/pipeline.py explains each step).
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "accounts.pipeline.require_allowed_domain",
    "accounts.pipeline.linked_user",
    "accounts.pipeline.user_by_verified_email",
    "accounts.pipeline.require_active_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "accounts.pipeline.mark_email_verified",
)
# Seconds any call to Google (tokeninfo, userinfo, certificates) may take before a 503.
SOCIAL_AUTH_REQUESTS_TIMEOUT = 5

# --- Internationalization and static files ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Serve static files straight from the apps (no collectstatic needed) when DEBUG is on, looked up
# when asked for: else each start of the middleware (every test client) lists and stats all of
# them, ~170 files (10 ms each time, 1,673 times in the suite).
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG

# --- Logging ----------------------------------------------------------------------------------
# text: one readable line per record; json: one JSON object per line, with the fields of the
# access line (route, status, duration_ms, user_id, organization_id) as keys.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "pms.context.RequestIDLogFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {
            # python-json-logger: these keys, then every `extra` of the record.
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            # Django's loggers pass the request as an extra; its repr holds the query string.
            "reserved_attrs": [*RESERVED_ATTRS, "request"],
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Our handler logs every 4xx/5xx with its request id; Django's own copy is noise.
        "django.request": {"level": "ERROR"},
    },
}

# --- Metrics and error reporting (pms/metrics.py, pms/sentry.py) ------------------------------
# /metrics answers a scraper that sends `Authorization: Bearer <METRICS_TOKEN>` and/or comes
# from one of METRICS_ALLOWED_NETWORKS (CIDRs); every one set must hold. Neither set: 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(network, strict=False)
    for network in env.list("METRICS_ALLOWED_NETWORKS", default=[])
]
# Errors go to Sentry when set, stripped of PHI.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from pms.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        release=VERSION,
    )
