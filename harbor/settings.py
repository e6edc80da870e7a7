"""Harbor's settings, read from the environment with working local defaults.

Environment variables (all optional on a developer machine):
    DATABASE_URL      PostgreSQL URL; default the local database ``harbor``.
    REDIS_URL         Redis URL for the Celery broker and the build locks.
    HARBOR_BASE_URL   Absolute URL users reach Harbor at; used in links printed by commands.
    HARBOR_QUEUE_PREFIX  Prefix of Celery queue names (tests use their own, so a worker
                      running elsewhere on the machine never takes their tasks).
    SECRET_KEY        Required unless DEBUG is on (Harbor refuses to start without a strong
                      one); the same value for every process.
    DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS.
    HARBOR_HTTPS, HARBOR_BEHIND_PROXY, HARBOR_HSTS_SECONDS  Serving over HTTPS (below).
"""

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from forges.config import load_forges
from harbor.credentials import load_credentials

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean from the environment: 1/true/yes/on (any case) are true."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    """Read an integer from the environment, falling back to ``default``."""
    value = os.environ.get(name)
    return int(value) if value else default


def weak_secret_key(key: str) -> bool:
    """Whether ``key`` fails Django's own test of a secret key (``check --deploy``'s
    security.W009): fewer than 50 characters or 5 different ones, or Django's
    ``django-insecure-`` prefix of generated development keys."""
    return len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure-")


DEBUG = env_bool("DEBUG", False)
# Sessions, CSRF tokens and every target's callback secret (builds/secrets.py) derive from
# SECRET_KEY, so with a known key anyone could forge a target's verdict: without DEBUG,
# Harbor refuses to start rather than fall back to a key anyone can read here.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if weak_secret_key(SECRET_KEY):
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is missing or insecure (it needs at least 50 characters, 5 of them "
            "different, and no 'django-insecure-' prefix). Set it in the environment of "
            "every Harbor process (web, workers, beat, manage.py), to the same value, e.g. "
            "one made by: python -c 'import secrets; print(secrets.token_urlsafe(50))'. "
            "In a checkout where `make demo` ran: export SECRET_KEY=$(cat .run/secret-key). "
            "For development only, DEBUG=1 lets Harbor use a public key instead."
        )
    SECRET_KEY = SECRET_KEY or "django-insecure-harbor-development-key"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "*").split(",")
CSRF_TRUSTED_ORIGINS = [
    origin for origin in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if origin
]

# Served over HTTPS (HARBOR_HTTPS): cookies only over HTTPS, plain HTTP redirected (but for
# /healthz, which load balancers probe over plain HTTP, and /metrics, which Prometheus
# scrapes from each host's own address), and HSTS for a year unless told.
HARBOR_HTTPS = env_bool("HARBOR_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HARBOR_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("HARBOR_HSTS_SECONDS", 365 * 24 * 3600 if HARBOR_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Behind a proxy that ends TLS (HARBOR_BEHIND_PROXY), the request is HTTPS when the proxy
# says so; the proxy must set (not pass on) X-Forwarded-Proto.
if env_bool("HARBOR_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS preloading commits a whole registered domain to HTTPS in browsers, a choice for the
# domain's owner (and one made on the domain itself, where Harbor seldom lives): not asked.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "accounts",
    "builds",
    "messages_api",
    "workers",
    "forges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves static files (CSS, vendored htmx) from gunicorn itself, with DEBUG off.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A database or broker outage in a view: a JSON 503 with Retry-After, not an HTML 500.
    "messages_api.outage.OutageMiddleware",
]

ROOT_URLCONF = "harbor.urls"
WSGI_APPLICATION = "harbor.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# Persistent connections with health checks: opening a connection per request costs more
# than a small request's own work (docs/design.md §4.1).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/harbor"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
# The hot path's named reads as prepared statements of each session (harbor.named_reads);
# off behind a pooler that changes a client's session between transactions.
DATABASE_PREPARED_READS = env_bool("DATABASE_PREPARED_READS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where ``collectstatic`` gathers files for a proxy; unset, WhiteNoise serves them from
# their source folders (WHITENOISE_USE_FINDERS below).
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "build-list"
LOGOUT_REDIRECT_URL = "login"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
HARBOR_BASE_URL = os.environ.get("HARBOR_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
HARBOR_QUEUE_PREFIX = os.environ.get("HARBOR_QUEUE_PREFIX", "harbor")

# Seconds a build lock lives unless released; a pass takes milliseconds, so this only bounds
# how long a crashed holder can delay the next pass (the fallback update fires after it).
HARBOR_BUILD_LOCK_LEASE = env_int("HARBOR_BUILD_LOCK_LEASE", 30)
# Seconds a target worker's claim lives without renewal; renewed every third of it while a
# step runs, so a killed worker's target can be claimed again after at most this long.
HARBOR_TARGET_LEASE = env_int("HARBOR_TARGET_LEASE", 60)
# Times a target's claim may lapse while its step runs (a worker killed or stalled) before
# the next lapse fails the target instead of running its step again.
HARBOR_TARGET_MAX_LOST = env_int("HARBOR_TARGET_MAX_LOST", 3)
# Seconds between a running step's checks that its build was not aborted or restarted.
HARBOR_ABORT_POLL = float(os.environ.get("HARBOR_ABORT_POLL", "2"))
# Seconds an HTTP step waits for the outside system's response (Harbormaster uses 60).
HARBOR_HTTP_TIMEOUT = env_int("HARBOR_HTTP_TIMEOUT", 60)
# Seconds between checks for waiting targets past their ``wait_timeout``.
HARBOR_WAIT_CHECK = float(os.environ.get("HARBOR_WAIT_CHECK", "5"))
# Attempts to call a step's cancel hook (``on_abort``) before giving up.
HARBOR_CANCEL_HOOK_ATTEMPTS = env_int("HARBOR_CANCEL_HOOK_ATTEMPTS", 5)
# Seconds before the repair task treats a build's missing follow-up as lost.
HARBOR_REPAIR_BOUND = env_int("HARBOR_REPAIR_BOUND", 30)
# Seconds an engine update may wait with no pass of any build finishing before /healthz
# reports the engine as stalled.
HARBOR_ENGINE_STALL_AFTER = env_int("HARBOR_ENGINE_STALL_AFTER", 60)
# Seconds between a Celery worker's heartbeats (workers/heartbeat.py); `manage.py
# workerhealth` calls a worker dead after three missed.
HARBOR_WORKER_HEARTBEAT = float(os.environ.get("HARBOR_WORKER_HEARTBEAT", "10"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["messages_api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "messages_api.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = f"{HARBOR_QUEUE_PREFIX}.targets"
# Every queue Harbor uses: a worker started without -Q serves them all, so a newcomer's
# `celery -A harbor worker` runs the engine too; -Q picks some (see README "Processes").
CELERY_TASK_QUEUES = [
    Queue(f"{HARBOR_QUEUE_PREFIX}.engine"),
    Queue(f"{HARBOR_QUEUE_PREFIX}.targets"),
]
# Priorities: the Redis transport keeps a list per queue and priority step (0, 3, 6, 9) and
# a worker takes from the priority-0 lists of all its queues before any other. Every task
# is routed at priority 5; what the repair task re-queues (a claim whose worker was lost, a
# target whose task was lost) is sent at 0 (builds/engine/dispatch.py), so a reclaim never
# waits behind a backlog of ordinary work.
ORDINARY_PRIORITY = 5
_ENGINE = {"queue": f"{HARBOR_QUEUE_PREFIX}.engine", "priority": ORDINARY_PRIORITY}
_TARGETS = {"queue": f"{HARBOR_QUEUE_PREFIX}.targets", "priority": ORDINARY_PRIORITY}
CELERY_TASK_ROUTES = {
    "workers.tasks.update_build": _ENGINE,
    "workers.tasks.repair_builds": _ENGINE,
    "workers.tasks.expire_waits": _ENGINE,
    "workers.tasks.announce_stuck_targets": _ENGINE,
    "workers.tasks.run_target": _TARGETS,
    "workers.tasks.call_cancel_hook": _TARGETS,
    "forges.tasks.deliver": _TARGETS,
    "forges.tasks.sweep_deliveries": _TARGETS,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep a worker's database connection across tasks: opening one per task costs more than an
# engine pass (docs/design.md §4.1). workers/connections.py drops a broken one.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULE = {
    "repair-builds": {
        "task": "workers.tasks.repair_builds",
        "schedule": max(HARBOR_REPAIR_BOUND / 3, 1),
    },
    "expire-waits": {"task": "workers.tasks.expire_waits", "schedule": HARBOR_WAIT_CHECK},
    "announce-stuck": {
        "task": "workers.tasks.announce_stuck_targets",
        "schedule": HARBOR_WAIT_CHECK,
    },
    "sweep-deliveries": {
        "task": "forges.tasks.sweep_deliveries",
        "schedule": max(HARBOR_REPAIR_BOUND / 3, 1),
    },
}

# Log lines as plain text (the default) or, with HARBOR_LOG_FORMAT=json, one JSON object a
# line with the ids of the build and target it concerns (harbor/logformat.py); Celery
# workers switch their own handlers to it (harbor/celery.py).
HARBOR_LOG_FORMAT = os.environ.get("HARBOR_LOG_FORMAT", "text")
if HARBOR_LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(
        f"HARBOR_LOG_FORMAT must be 'text' or 'json', not {HARBOR_LOG_FORMAT!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "harbor.logformat.JsonFormatter"}},
    "filters": {"ids": {"()": "harbor.logformat.ContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["ids"],
            **({"formatter": "json"} if HARBOR_LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Named credentials for HTTP steps, as JSON: {"name": {"username": "…", "password": "…"}},
# {"name": {"type": "bearer", "token": "…"}} or {"name": {"type": "header", "header": "…",
# "value": "…"}} (harbor/credentials.py). Plans refer to them by name, so secrets never sit
# in plan files or logs. A malformed entry stops Harbor here, at start, rather than a build.
HARBOR_CREDENTIALS = load_credentials(os.environ.get("HARBOR_CREDENTIALS", "{}"))
# Forges whose webhooks start builds, as JSON: {"name": {"type": "github" | "gitlab" |
# "gitea", "url": "<API base URL>", "token": "…", "webhook_secret": "…"}} (forges/config.py).
# A malformed entry stops Harbor here, at start, rather than at the first webhook.
HARBOR_FORGES = load_forges(os.environ.get("HARBOR_FORGES", "{}"))
# Bearer token /metrics asks for; unset, /metrics answers 404 (harbor/metrics.py).
# The counters themselves are counted where the events happen (builds/metrics.py).
HARBOR_METRICS_TOKEN = os.environ.get("HARBOR_METRICS_TOKEN", "")
# Where every process of this host writes its metrics for /metrics to add up; read by
# prometheus_client itself when a process starts, so it must be in every process's
# environment (docs/deploy.md, "Metrics").
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
# Seconds a commit status or notification request may wait to connect, and then for each
# read (forges/posting.py).
HARBOR_STATUS_TIMEOUT = env_int("HARBOR_STATUS_TIMEOUT", 10)

# Serve static files straight from the apps' and project's folders, so gunicorn serves them
# without a collectstatic step (a deployment may still collect them for a proxy).
WHITENOISE_USE_FINDERS = True

# Largest REST request body accepted, in bytes, counted as it is read (413 beyond it), so a
# missing or false Content-Length cannot get a larger body past it.
HARBOR_API_MAX_BODY_BYTES = env_int("HARBOR_API_MAX_BODY_BYTES", 16 * 1024 * 1024)
# Most unit results, and most lint messages, one message may carry (400 beyond either).
HARBOR_API_MAX_UNIT_RESULTS = env_int("HARBOR_API_MAX_UNIT_RESULTS", 50_000)
HARBOR_API_MAX_LINT_MESSAGES = env_int("HARBOR_API_MAX_LINT_MESSAGES", 50_000)
# URLs HTTP steps may reach: patterns of scheme://host[:port], separated by commas or spaces,
# where * in the host or port matches anything ("http://127.0.0.1:*", "https://*.example.com");
# a pattern without a port allows the scheme's default port only. See builds/egress.py.
HARBOR_HTTP_ALLOWED_URLS = (
    os.environ.get("HARBOR_HTTP_ALLOWED_URLS", "http://*:*, https://*:*").replace(",", " ").split()
)

# --- Conduit-compatible API, JUnit reports and the OpenAPI description ---
INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
SPECTACULAR_SETTINGS = {
    "TITLE": "Harbor REST API",
    "DESCRIPTION": (
        "Send messages (verdicts with unit and lint results, or build commands), JUnit "
        "reports, and start and read builds. Authenticate with `Authorization: Bearer "
        "<token>`. Harbor also speaks Conduit at `POST /api/<method>` (call "
        "`conduit.query` for its methods)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets come from drf-spectacular-sidecar, served locally: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The OpenAPI links between operations (start a build, then message its target).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "messages_api.openapi.add_links",
    ],
}
# Largest Conduit call body and JUnit report accepted, in bytes.
HARBOR_CONDUIT_MAX_BODY_BYTES = env_int("HARBOR_CONDUIT_MAX_BODY_BYTES", 16 * 1024 * 1024)
HARBOR_JUNIT_MAX_BYTES = env_int("HARBOR_JUNIT_MAX_BYTES", 8 * 1024 * 1024)

# Step catalogue. Command steps run shell commands on worker hosts: an operator who does not
# want plans to run code there switches them off (plan import then refuses them).
HARBOR_ALLOW_COMMAND_STEPS = env_bool("HARBOR_ALLOW_COMMAND_STEPS", True)
# Seconds a command step may run before it is killed (a step's ``timeout`` may lower it).
HARBOR_COMMAND_TIMEOUT = env_int("HARBOR_COMMAND_TIMEOUT", 3600)
# Bytes of log text kept per target; what is cut is said in the log.
HARBOR_LOG_LIMIT_BYTES = env_int("HARBOR_LOG_LIMIT_BYTES", 8 * 1024 * 1024)
# The group whose members may change build plans through the API and the web UI, besides
# staff; empty means staff only.
HARBOR_PLAN_ADMINS = os.environ.get("HARBOR_PLAN_ADMINS", "").strip()


def env_seconds(name: str) -> float | None:
    """Read a positive number of seconds from the environment; None when unset or empty.
    Anything else (text, 0, a negative number, NaN) stops Harbor at start, naming it."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ImproperlyConfigured(f"{name} must be a number of seconds above 0, not {value!r}")
    return seconds


# Seconds a target of a step that sets no wait_timeout waits for a message before it times
# out (failing); unset, such a target waits for ever, as Harbormaster's do.
HARBOR_DEFAULT_WAIT_TIMEOUT = env_seconds("HARBOR_DEFAULT_WAIT_TIMEOUT")
