"""Django settings for dmaas.

Everything comes from the environment (see the table in README.md) through the strict helpers in
portal/env.py. The defaults make a fresh checkout work with no server at all: SQLite in WAL mode
for the portal's tables, a DuckDB file for the warehouse and kombu's filesystem transport as the
Celery broker, all under var/. Production sets DATABASE_URL, DMAAS_WAREHOUSE and CELERY_BROKER_URL.
"""

import os
import re
import secrets
import tempfile
import zoneinfo
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal.broker import filesystem_transport_options, redis_transport_options
from portal.env import env_bool, env_int, env_list, env_secret, env_str, secret_key_problem
from portal.logging_config import logging_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def _path(name: str, default: Path) -> Path:
    """A path from the environment; a relative one is taken from the repository root."""
    return BASE_DIR / env_str(name, str(default))


# A second copy of the portal (test, staging) beside production on the same warehouse and servers:
# DMAAS_COPY names it, and then every schema it builds into carries the prefix `<copy>_` (production
# `<copy>_analytics`, CI `<copy>_ci_<change>`, previews `<copy>_dev_<user>`), its local state lives in
# var/copies/<copy>/ and its repository is its own. Production is the copy without a name. "ci" and
# "dev" are refused: production's own `ci_*` and `dev_*` schemas would then collide with the copy's.
DMAAS_COPY = env_str("DMAAS_COPY", "")
if DMAAS_COPY and (
    not re.fullmatch(r"[a-z][a-z0-9]{0,10}", DMAAS_COPY) or DMAAS_COPY in ("ci", "dev", "analytics")
):
    raise ImproperlyConfigured(
        f"DMAAS_COPY={DMAAS_COPY!r}: use 1-11 lower-case letters and digits, starting with a letter "
        "(e.g. test, staging), and not ci, dev or analytics, whose schemas production already uses."
    )
DMAAS_SCHEMA_PREFIX = f"{DMAAS_COPY}_" if DMAAS_COPY else ""

VAR_DIR = _path("DMAAS_VAR_DIR", (BASE_DIR / "var" / "copies" / DMAAS_COPY) if DMAAS_COPY else (BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DMAAS_DEBUG", False)
# pytest (>= 8.2) sets PYTEST_VERSION for the length of a run. pytest-django loads these settings
# before any conftest can set variables, so this is how a bare `pytest` gets a throwaway key.
TESTING = "PYTEST_VERSION" in os.environ


def _local_secret_key(path: Path) -> str:
    """A random key generated once per install, for development only.

    web, worker and beat may start at the same moment and must agree on one key: the key is
    written to a temporary file and linked into place, which fails if another process won.
    """
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(64), encoding="utf-8")
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = env_secret("DMAAS_SECRET_KEY")
_problem = secret_key_problem(SECRET_KEY)
if _problem and DEBUG and SECRET_KEY is None:
    SECRET_KEY = _local_secret_key(VAR_DIR / "secret_key")
elif _problem and TESTING and SECRET_KEY is None:
    SECRET_KEY = secrets.token_urlsafe(64)
elif _problem and not DEBUG:
    # A default key lets anyone forge sessions (Superset CVE-2023-27524): refuse to start.
    raise ImproperlyConfigured(
        f"DMAAS_SECRET_KEY {_problem}. Outside debug mode dmaas needs a random key of at least 50 "
        "characters, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(64))'. "
        "For development, DMAAS_DEBUG=1 uses a key generated once under var/."
    )

ALLOWED_HOSTS = env_list("DMAAS_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DMAAS_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "portal.views.errors.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles, so runserver serves static files through WhiteNoise as production does.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files served from this process: the docs page works with no CDN.
    "drf_spectacular_sidecar",
    "axes",
    "django_celery_beat",
    "models_service",
    "runner",
    "portal",
]

MIDDLEWARE = [
    # First: every later log line of the request carries its id.
    "portal.logging_config.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.navigation",
            ],
        },
    },
]

# Database: the portal's own tables, not the warehouse.
_database_url = env_str("DATABASE_URL", "")
if _database_url:
    try:
        DATABASES = {
            "default": dj_database_url.parse(
                _database_url,
                conn_max_age=env_int("DMAAS_DB_CONN_MAX_AGE", 60, minimum=0),
                conn_health_checks=True,
            )
        }
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "portal.sqlite3",
            "OPTIONS": {
                # web, worker and beat share this file. WAL lets readers run beside the one
                # writer; IMMEDIATE takes the write lock when a transaction starts, so two
                # writers queue (up to `timeout` seconds) instead of failing with "database is
                # locked" when a read transaction tries to upgrade.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Tests use a file like production, not Django's shared-cache in-memory database: that
            # one answers concurrent writers with "table is locked" at once instead of queueing them
            # (WAL, IMMEDIATE and the timeout above do not apply to it). One file per test process.
            "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"dmaas-test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The data-models git repository and the warehouse the engine builds into.
# A copy's default name differs too, so that two copies pointed at one DMAAS_VAR_DIR still keep apart.
_repo_name = f"data-models-{DMAAS_COPY}.git" if DMAAS_COPY else "data-models.git"
DMAAS_REPO = str(_path("DMAAS_REPO", VAR_DIR / _repo_name))
DMAAS_REPO_REMOTE = env_str("DMAAS_REPO_REMOTE", "")
if DMAAS_REPO_REMOTE and (
    "::" in DMAAS_REPO_REMOTE
    or DMAAS_REPO_REMOTE.startswith("-")
    or ("://" in DMAAS_REPO_REMOTE and not DMAAS_REPO_REMOTE.lower().startswith(("file://", "ssh://", "https://")))
):
    # Transport helpers such as ext:: run commands (GitPython CVE-2022-24439); the store refuses them too.
    raise ImproperlyConfigured("DMAAS_REPO_REMOTE must be a local path, file://, ssh:// (or user@host:path) or https://.")
# Four slashes: `duckdb:///` followed by an absolute path.
DMAAS_WAREHOUSE = env_str("DMAAS_WAREHOUSE", f"duckdb:///{VAR_DIR / 'warehouse.duckdb'}")
# The schema main's models are deployed to (with the copy's prefix); previews and tests read unmodified
# parents from it.
DMAAS_PRODUCTION_SCHEMA = DMAAS_SCHEMA_PREFIX + env_str("DMAAS_PRODUCTION_SCHEMA", "analytics")
if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", DMAAS_PRODUCTION_SCHEMA):
    raise ImproperlyConfigured(f"DMAAS_PRODUCTION_SCHEMA={DMAAS_PRODUCTION_SCHEMA!r} is not a schema name.")
# Previews (runner/warehouse.py): a PostgreSQL login that may only SELECT, if there is one (the database,
# not the parser, is then the boundary: docs/warehouse-roles.md and `manage.py dmaas_warehouse_roles`
# make it); the most rows one returns; its statement timeout; and how long a preview may wait for the
# embedded DuckDB file to be handed over between processes. DMAAS_PREVIEW_WAREHOUSE is the older name.
_preview_url, _preview_old = env_str("DMAAS_PREVIEW_WAREHOUSE_URL", ""), env_str("DMAAS_PREVIEW_WAREHOUSE", "")
if _preview_url and _preview_old and _preview_url != _preview_old:
    raise ImproperlyConfigured("Set DMAAS_PREVIEW_WAREHOUSE_URL or DMAAS_PREVIEW_WAREHOUSE, not both.")
DMAAS_PREVIEW_WAREHOUSE = _preview_url or _preview_old
if DMAAS_PREVIEW_WAREHOUSE and not DMAAS_PREVIEW_WAREHOUSE.startswith(("postgresql://", "postgres://")):
    raise ImproperlyConfigured("DMAAS_PREVIEW_WAREHOUSE_URL must be a postgresql:// URL (DuckDB previews need none).")
if DMAAS_PREVIEW_WAREHOUSE and DMAAS_PREVIEW_WAREHOUSE == DMAAS_WAREHOUSE:
    raise ImproperlyConfigured("DMAAS_PREVIEW_WAREHOUSE_URL must be a login of its own, not the warehouse's.")
DMAAS_PREVIEW_MAX_ROWS = env_int("DMAAS_PREVIEW_MAX_ROWS", 1000, minimum=1)
DMAAS_PREVIEW_TIMEOUT_MS = env_int("DMAAS_PREVIEW_TIMEOUT_MS", 30_000, minimum=100)
DMAAS_PREVIEW_WAIT_SECONDS = env_int("DMAAS_PREVIEW_WAIT_SECONDS", 60, minimum=1)
# Production runs (runner/runs.py): nodes in the warehouse at once, whatever the number of workers;
# a model's time limit (its query is cancelled and its transaction rolled back); where incidents are
# posted as JSON, besides the e-mails to platform admins.
DMAAS_WAREHOUSE_CONCURRENCY = env_int("DMAAS_WAREHOUSE_CONCURRENCY", 4, minimum=1)
DMAAS_MODEL_TIME_LIMIT = env_int("DMAAS_MODEL_TIME_LIMIT", 900, minimum=10)
# Celery's hard limit of one run node (runner.tasks.run_node): the model's limit cancels its query
# first; this kills a worker stuck outside the warehouse (the soft limit is a minute earlier).
DMAAS_RUN_NODE_TIME_LIMIT = DMAAS_MODEL_TIME_LIMIT + 120
# Measure each production build (runner/observe): statistics, anomalies, PII scans. Off only to time
# the orchestration alone (bench/run.py --no-measure).
DMAAS_MEASURE_BUILDS = env_bool("DMAAS_MEASURE_BUILDS", True)
DMAAS_INCIDENT_WEBHOOK = env_str("DMAAS_INCIDENT_WEBHOOK", "")
# The business-hours clock of the service agreement (runner/sla): working days (mon..sun, ranges and
# lists: "mon-fri"), working hours, and public holidays of a country and subdivision ("DE-BE"; empty:
# none); closing days of the company's own are added in the admin. Alerts go to DMAAS_SLA_WEBHOOK too.
DMAAS_WORKING_DAYS = env_str("DMAAS_WORKING_DAYS", "mon-fri")
DMAAS_WORKING_HOURS = env_str("DMAAS_WORKING_HOURS", "09:00-17:00")
DMAAS_HOLIDAYS = env_str("DMAAS_HOLIDAYS", "DE")
DMAAS_SLA_WEBHOOK = env_str("DMAAS_SLA_WEBHOOK", "")
try:
    from runner.sla.clock import parse_days, parse_holidays, parse_hours

    parse_days(DMAAS_WORKING_DAYS), parse_hours(DMAAS_WORKING_HOURS), parse_holidays(DMAAS_HOLIDAYS)
except ValueError as _err:
    raise ImproperlyConfigured(f"The service agreement's clock: {_err}") from None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTHENTICATION_BACKENDS = [
    # django-axes refuses a username that is locked out; the guard then reserves one of the
    # allowed attempts before the password is checked, so parallel guesses cannot all slip
    # past axes' count (portal/login_guard.py says why); ModelBackend checks the password.
    "axes.backends.AxesStandaloneBackend",
    "portal.backends.LoginGuardBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Platform admins get the Django admin's model permissions from their role, not per user.
    "portal.backends.RolePermissionBackend",
]

# Login lockout (django-axes). Counted per username, whatever the address: guessing one
# account's password from many addresses is the attack that matters, and a per-address count
# lets a botnet through. The price is that anyone can lock an account for the cool-off; that is
# why the cool-off is short and an admin can lift it (`manage.py axes_reset_username NAME`).
AXES_FAILURE_LIMIT = env_int("DMAAS_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("DMAAS_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout do not restart the cool-off: it ends COOLOFF after the 10th failure.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are still logged
# axes.W006 asks for the address among the parameters because, it says, attackers rotate
# User-Agents or cookies; a count per username depends on neither (tests/access/test_lockout.py
# rotates both, and the address too). Silenced for that reason only.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_SENSITIVE_PARAMETERS = ["username", "password", "new_password1", "new_password2", "old_password"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DMAAS_TIME_ZONE", "Europe/Berlin")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"DMAAS_TIME_ZONE={TIME_ZONE!r} is not a known time zone.") from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = _path("DMAAS_STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed files need `collectstatic`; tests run without it.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# HTTPS: set DMAAS_HTTPS=1 where the portal is reached over TLS (always, in production).
DMAAS_HTTPS = env_bool("DMAAS_HTTPS", False)
SECURE_SSL_REDIRECT = DMAAS_HTTPS
# The container health check calls /healthz over plain HTTP from inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = DMAAS_HTTPS
CSRF_COOKIE_SECURE = DMAAS_HTTPS
SECURE_HSTS_SECONDS = env_int("DMAAS_HSTS_SECONDS", 31_536_000 if DMAAS_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DMAAS_HSTS_INCLUDE_SUBDOMAINS", DMAAS_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DMAAS_HSTS_PRELOAD", DMAAS_HTTPS)
if env_bool("DMAAS_BEHIND_PROXY", False):
    # Only behind a proxy that sets this header itself; otherwise a client could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The proxy appends the client's address to X-Forwarded-For; axes records that address.
    AXES_IPWARE_PROXY_COUNT = 1
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
X_FRAME_OPTIONS = "DENY"

# A cache shared by every web process in production (API throttling counts in it); without
# one, each process counts on its own, which is fine for the single process of development.
_cache_url = env_str("DMAAS_CACHE_URL", "")
if _cache_url.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
elif _cache_url:
    raise ImproperlyConfigured("DMAAS_CACHE_URL must be a redis:// URL (or unset for a per-process cache).")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Copies sharing one Redis keep their counts apart.
CACHES["default"]["KEY_PREFIX"] = DMAAS_COPY

# API tokens: how long a new one lives unless its creator asks for less (or more, up to the maximum).
DMAAS_API_TOKEN_DAYS = env_int("DMAAS_API_TOKEN_DAYS", 30, minimum=1)
DMAAS_API_TOKEN_MAX_DAYS = env_int("DMAAS_API_TOKEN_MAX_DAYS", 365, minimum=1)
if DMAAS_API_TOKEN_DAYS > DMAAS_API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured("DMAAS_API_TOKEN_DAYS must not exceed DMAAS_API_TOKEN_MAX_DAYS.")


def _rate(name: str, default: str) -> str:
    value = env_str(name, default)
    number, _, period = value.partition("/")
    if not number.isdigit() or period[:1] not in ("s", "m", "h", "d"):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate such as 600/minute.")
    return value


REST_FRAMEWORK = {
    # A token first: its class answers 401 with a WWW-Authenticate header. Session cookies serve
    # the pages' own calls, and DRF checks their CSRF token on every unsafe method.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.frame.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    # Fairness between clients, counted in the cache. Not a defence against password guessing:
    # concurrent requests slip past it (DRF #8127); the login lockout does that job.
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.frame.ClientRateThrottle", "rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "client": _rate("DMAAS_API_RATE", "600/minute"),
        "anon": _rate("DMAAS_API_ANON_RATE", "60/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dmaas API",
    "DESCRIPTION": (
        "DataModels-as-a-Service. Authenticate with `Authorization: Bearer <token>` (tokens are made "
        "on the profile page). Errors have the shape `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: read by portal/celery.py with the CELERY_ namespace.
# The host part means nothing to the filesystem transport; without one kombu warns at every start.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_TIME_LIMIT = env_int("DMAAS_TASK_TIME_LIMIT", 3600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("DMAAS_TASK_SOFT_TIME_LIMIT", CELERY_TASK_TIME_LIMIT - 60, minimum=1)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("DMAAS_TASK_SOFT_TIME_LIMIT must be below DMAAS_TASK_TIME_LIMIT.")
_scheme = CELERY_BROKER_URL.partition("://")[0]
if _scheme == "filesystem":
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_transport_options(VAR_DIR / "celery")
elif _scheme in ("redis", "rediss"):
    _visibility = env_int("DMAAS_REDIS_VISIBILITY_TIMEOUT", 7200, minimum=1)
    if _visibility <= max(CELERY_TASK_TIME_LIMIT, DMAAS_RUN_NODE_TIME_LIMIT):
        raise ImproperlyConfigured(
            "DMAAS_REDIS_VISIBILITY_TIMEOUT must exceed DMAAS_TASK_TIME_LIMIT and a run node's limit "
            "(DMAAS_MODEL_TIME_LIMIT + 120 s), or Redis hands a still-running task to a second worker."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = redis_transport_options(_visibility)
    if DMAAS_COPY:
        # Copies sharing one Redis database never take each other's tasks (queues, results, pings).
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = f"{DMAAS_COPY}:"
else:
    raise ImproperlyConfigured(f"CELERY_BROKER_URL must be filesystem:// or redis://, not {_scheme}://.")
# A task is acknowledged when it ends, not when it starts, so a worker that dies mid-task
# leaves it to be redelivered; tasks are written to be idempotent for that reason.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Recycling (RELIABILITY L6): a pool process is replaced by a fresh one after this many tasks, or after
# a task that left its peak RSS above the limit (MB; checked between tasks, never mid-task), so a slow
# leak in a library (GitPython, a driver) cannot grow one process for ever. 0 turns a guard off. Only
# the prefork pool honours them (production's, and scripts/dev's default); solo and threads ignore them.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("DMAAS_WORKER_MAX_TASKS_PER_CHILD", 1000, minimum=0) or None
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("DMAAS_WORKER_MAX_MEMORY_MB", 1024, minimum=0) * 1024 or None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Installed into django-celery-beat's tables when beat starts (then editable in the admin). `expires`
# just under the period, so runs never pile up behind a slow remote.
DMAAS_SYNC_INTERVAL = env_int("DMAAS_SYNC_INTERVAL", 60, minimum=10)
CELERY_BEAT_SCHEDULE = {
    "dmaas-reconcile-runs": {
        "task": "runner.tasks.reconcile",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "dmaas-sync-remote": {
        "task": "models_service.tasks.sync_remote",
        "schedule": float(DMAAS_SYNC_INTERVAL),
        "options": {"expires": DMAAS_SYNC_INTERVAL * 0.9},
    },
    # The service agreement's alerts (runner/sla/alerts.py): each transition told once, whatever the beats.
    "dmaas-sla-sweep": {
        "task": "runner.tasks.sla_sweep",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "dmaas-sla-digest": {
        "task": "runner.tasks.sla_digest",
        "schedule": crontab(hour=8, minute=0),
    },
}

_log_level = env_str("DMAAS_LOG_LEVEL", "INFO").upper()
if _log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"DMAAS_LOG_LEVEL={_log_level!r} is not a log level.")
# plain (the default) or json: one JSON object per line with time, level, logger, message and the
# request id or Celery task (portal/logging_config.py).
DMAAS_LOG_FORMAT = env_str("DMAAS_LOG_FORMAT", "plain").lower()
if DMAAS_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"DMAAS_LOG_FORMAT={DMAAS_LOG_FORMAT!r}: use plain or json.")
LOGGING = logging_settings(_log_level, DMAAS_LOG_FORMAT)
# Celery's worker replaces the root logger's handlers with its own format unless told not to; the
# JSON lines must come from workers and beat too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = DMAAS_LOG_FORMAT != "json"

# /healthz?full=1 (portal/views/health.py): each process answers from a report at most this old, so
# a flood of unauthenticated calls costs the servers behind it little.
DMAAS_HEALTH_CACHE_SECONDS = env_int("DMAAS_HEALTH_CACHE_SECONDS", 2, minimum=0)
