"""All settings come from the environment; see .env.example for every variable.

Defaults are production's where safety depends on them (DEBUG off, secrets required, HTTPS); the rest default
to a local development run (SQLite, the Zoom simulator on 127.0.0.1). A bad value stops start-up with a message
that names the variable.
"""

import ipaddress
import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_number(name, default, kind=int, minimum=0):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {raw!r}")
    return value


def env_url(name, default):
    value = env(name, default).rstrip("/")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off (docs/DEPLOY.md)")
    if not value.startswith(("http://", "https://", "ws://", "wss://", "redis://", "rediss://", "unix://")):
        # The value is not repeated: it may hold a password (REDIS_URL's), and this message goes to the logs.
        raise ImproperlyConfigured(f"{name} must be a URL (http, https, ws, wss, redis, rediss or unix)")
    return value


def env_list(name, default):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# Off unless set: a deployment that forgets a variable gets production behaviour, never development's
# (docs/SECURITY.md "Production defaults"). bin/run and the tests set DEBUG=true.
DEBUG = env_bool("DEBUG", False)
GENERATE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'
SECRET_KEY = env("SECRET_KEY") or ("dev-only-insecure-secret-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(f"SECRET_KEY must be set when DEBUG is off; generate one with: {GENERATE_A_KEY}")
# Separate from SECRET_KEY so rotating sessions never makes stored secrets unreadable, and a leaked SECRET_KEY
# alone never decrypts them.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY") or (SECRET_KEY if DEBUG else "")
if not DEBUG and FIELD_ENCRYPTION_KEY in ("", SECRET_KEY):
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY must be set, and differ from SECRET_KEY, when DEBUG is off; generate one with: "
        f"{GENERATE_A_KEY} (a database whose secrets were encrypted with SECRET_KEY: set FIELD_ENCRYPTION_KEY to "
        "that SECRET_KEY and generate a new SECRET_KEY)")
# Older keys that still decrypt, never encrypt: after a rotation, until `manage.py reencrypt_secrets --check` passes
# (docs/DEPLOY.md "Rotating FIELD_ENCRYPTION_KEY"). Refused even with DEBUG on: a stray comma is a mistake anywhere.
_previous_keys = env("FIELD_ENCRYPTION_PREVIOUS_KEYS")
FIELD_ENCRYPTION_PREVIOUS_KEYS = tuple(key.strip() for key in _previous_keys.split(",")) if _previous_keys else ()
if "" in FIELD_ENCRYPTION_PREVIOUS_KEYS or FIELD_ENCRYPTION_KEY in FIELD_ENCRYPTION_PREVIOUS_KEYS:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_PREVIOUS_KEYS must be comma-separated keys, none empty and none equal to "
        "FIELD_ENCRYPTION_KEY (docs/DEPLOY.md \"Rotating FIELD_ENCRYPTION_KEY\")")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Every URL Zoom is given (Home URL, OAuth redirect, webhooks) is built from it: a deployment must say it.
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000" if DEBUG else "")

# The admin console's sessions (zoomapp/console/auth.py, docs/SECURITY.md "Operators and account admins"): at most
# 8 hours from sign-in, ended after 30 minutes without a page request; the admin's role is asked of Zoom again when
# it was last confirmed over 5 minutes ago (and before every change or download).
CONSOLE_SESSION_SECONDS = env_number("CONSOLE_SESSION_SECONDS", 8 * 3600, minimum=60)
CONSOLE_IDLE_SECONDS = env_number("CONSOLE_IDLE_SECONDS", 30 * 60, minimum=60)
CONSOLE_ROLE_RECHECK_SECONDS = env_number("CONSOLE_ROLE_RECHECK_SECONDS", 300)
# A form refused by the CSRF check tells the person to reload the page and send it again (zoomapp/views/errors.py).
CSRF_FAILURE_VIEW = "zoomapp.views.errors.csrf_failure"

# HTTPS. Zoom only talks to https:// URLs, so production defaults assume TLS; development (DEBUG) runs on http.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers and Prometheus probe over plain http inside the network; both are answered without a redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# Only behind a proxy that terminates TLS and sets X-Forwarded-Proto itself (a client could send it too).
TRUST_X_FORWARDED_PROTO = env_bool("TRUST_X_FORWARDED_PROTO", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUST_X_FORWARDED_PROTO else None
# One Strict-Transport-Security value for every response (zoomapp/marketplace/security_headers.py sends it).
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)

# /metrics and /healthz?deep=1 (zoomapp/operator_access.py): a bearer token, and/or the networks they may be
# called from directly (never through a proxy). Nothing set: loopback only.
OPERATOR_TOKEN = env("OPERATOR_TOKEN")
try:
    OPERATOR_NETWORKS = [ipaddress.ip_network(n) for n in env_list("OPERATOR_NETWORKS", "127.0.0.1/32,::1/128")]
except ValueError as exc:
    raise ImproperlyConfigured(f"OPERATOR_NETWORKS must be comma-separated CIDRs: {exc}") from None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rtms",
    "zoomapp",
    "zoomapp.marketplace",
    "zoomapp.webhooks",
    "zoomapp.consent",
    "zoomapp.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "zoomapp.urls"
ASGI_APPLICATION = "zoomapp.asgi.application"

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

DATA_DIR = Path(env("DATA_DIR", str(BASE_DIR / "var")))

try:
    DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to one file: wait for locks instead of failing, and take
    # the write lock up front so two writers never deadlock on an upgrade.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
# PostgreSQL connections come from a pool in every process but Celery's, for the web process: Django under ASGI runs
# each request on a thread of its own and would open a new connection per request (a new backend, ~5 ms on Zoom's
# webhook for every start). The pool is as large as the web process's threads that keep a connection (the panel
# sockets' database threads, as many as asyncio's default executor, and the 4 that call Zoom's REST API) plus
# DATABASE_POOL_REQUESTS requests at once; a request past that waits for a connection. Celery's processes keep one
# connection per thread instead: its prefork fixup closes a pool before and after every task
# (celery/fixups/django.py), and a task's connection is kept for the next task until it is DATABASE_CONN_MAX_AGE
# seconds old or broken (zoomapp/celery.py), so tasks (a stopped stream's export, an auto-start on every join) do not
# start a PostgreSQL backend each, nor lose their prepared statements. Counts per process: docs/DEPLOY.md.
_CELERY = "celery" in (Path(sys.argv[0]).name, Path(sys.argv[0]).parent.name)
DATABASE_POOL_REQUESTS = env_number("DATABASE_POOL_REQUESTS", 10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_REQUESTS and not _CELERY:
    _KEPT_CONNECTIONS = min(32, (os.cpu_count() or 1) + 4) + 4
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": _KEPT_CONNECTIONS + DATABASE_POOL_REQUESTS, "timeout": 10}
    # Each connection handed out is checked first (one empty round trip): after PostgreSQL restarted, the pool's
    # idle connections are dead.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _CELERY:
    DATABASES["default"]["CONN_MAX_AGE"] = env_number("DATABASE_CONN_MAX_AGE", 600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # a kept connection is checked before a task uses it
    # Celery's Django fixup closes the task's connection around every task unless this is set, and then around
    # every 1,000th: Django's rule above decides instead.
    CELERY_DB_REUSE_MAX = 1000
# PostgreSQL's parse and plan of each statement were a third of its CPU on an approval's path (docs/PERFORMANCE.md):
# parameters are bound by the server and psycopg prepares a statement once a connection has run it five times.
# Off (Django's client-side binding) behind a transaction-mode PgBouncer older than 1.21 (docs/DEPLOY.md).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
# A connection whose server vanished without closing it (a failover, a dropped NAT entry) fails within about a minute
# instead of waiting on it for hours (the kernel's default): TCP keepalives while idle, and no sent data left
# unacknowledged for 60 s. The reconciler's thread is the one that must never hang (rtms/tasks.py). A setting of
# the same name in DATABASE_URL wins.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    for _name, _value in (("keepalives", 1), ("keepalives_idle", 30), ("keepalives_interval", 10),
                          ("keepalives_count", 3), ("tcp_user_timeout", 60000)):
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(_name, _value)
if env("DATABASE_TEST_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env("DATABASE_TEST_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0")
# Prefix of every Redis key, channel group and queue we own, so two deployments (or two
# test runs) can share one Redis.
REDIS_NAMESPACE = env("REDIS_NAMESPACE", "zoomapp")

CHANNEL_LAYERS = {
    "default": {
        # Redis pub/sub: a push to a group is one PUBLISH, received once by each web process, which hands it to
        # its own sockets in the group. The list-based layer wrote one copy per socket and popped them one by one
        # (1,000 panels of one meeting: 1,000 writes and 1,000 reads per push; docs/ARCHITECTURE.md "Pushing
        # state"). Nothing is queued for a socket that is gone; pushes carry full state, so none needs to be.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "prefix": f"{REDIS_NAMESPACE}:asgi"},
    }
}

# Celery: short tasks only (streams live in each worker's session host, see rtms/host.py).
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = f"{REDIS_NAMESPACE}.tasks"
# Early ack for the tasks that do not choose (beat's 30-second consent jobs, the health ping): a run lost with its
# worker is done by the next run 30 s later, where a late-acked message would come back only after Redis's
# visibility timeout (an hour), stale. A task that must never be lost acks late itself (console/tasks.py).
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_NAMESPACE}:", "socket_timeout": 5,
                                   "socket_connect_timeout": 5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# Zoom's endpoints: Zoom itself by default; development points them at the simulator (bin/devstack.py, the tests).
# The client secret, OAuth codes and tokens travel to them, so without DEBUG they must be https unless
# ZOOM_ALLOW_INSECURE_HTTP says otherwise (the benchmarks, which run as deployed against the simulator).
ZOOM_OAUTH_URL = env_url("ZOOM_OAUTH_URL", "https://zoom.us")
ZOOM_API_URL = env_url("ZOOM_API_URL", "https://api.zoom.us/v2")
for _name, _url in (("ZOOM_OAUTH_URL", ZOOM_OAUTH_URL), ("ZOOM_API_URL", ZOOM_API_URL)):
    if not _url.startswith("https://") and not env_bool("ZOOM_ALLOW_INSECURE_HTTP", DEBUG):
        raise ImproperlyConfigured(f"{_name} must be an https URL when DEBUG is off, not {_url!r}")
ZOOM_HTTP_TIMEOUT = env_number("ZOOM_HTTP_TIMEOUT", 10.0, float)

# Media storage (see rtms/sinks.py) and how long it is kept.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_RETENTION_DAYS = env_number("MEDIA_RETENTION_DAYS", 30)
# Zoom's webhook deliveries as received (names and emails of participants among them) are kept this long: long
# enough to recognise Zoom's retries (up to about 85 minutes) and for the console's last day of concurrency alerts.
WEBHOOK_DELIVERY_RETENTION_DAYS = env_number("WEBHOOK_DELIVERY_RETENTION_DAYS", 7, minimum=1)
# Where stored media lives (rtms/storage.py): "local" (MEDIA_ROOT, one machine) or "s3" (any S3-API object store,
# reachable from every node; credentials from the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
MEDIA_STORAGE = env("MEDIA_STORAGE", "local")
if MEDIA_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be local or s3, not {MEDIA_STORAGE!r}")
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET", "")
MEDIA_S3_ENDPOINT_URL = env("MEDIA_S3_ENDPOINT_URL", "")  # empty: AWS itself
MEDIA_S3_REGION = env("MEDIA_S3_REGION", "us-east-1")
if MEDIA_STORAGE == "s3" and not MEDIA_S3_BUCKET:
    raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET")
# Each worker node writes a segment locally, then uploads it (every RTMS_SEGMENT_SECONDS, at the end, at handover).
RTMS_SPOOL_DIR = Path(env("RTMS_SPOOL_DIR", str(DATA_DIR / "spool")))
RTMS_SEGMENT_SECONDS = env_number("RTMS_SEGMENT_SECONDS", 60.0, float, minimum=1.0)

# Stream holding (rtms/leases.py, rtms/host.py); the defaults give failover in about 5 s.
RTMS_LEASE_TTL = env_number("RTMS_LEASE_TTL", 3.0, float, minimum=0.5)
RTMS_RECONCILE_INTERVAL = env_number("RTMS_RECONCILE_INTERVAL", 2.0, float, minimum=0.2)
RTMS_RECONNECT_SCALE = env_number("RTMS_RECONNECT_SCALE", 1.0, float)
# Each worker pool process's scrape endpoint (rtms/metrics.py HOST): the first free port from RTMS_METRICS_PORT (0:
# none), on RTMS_METRICS_ADDR, loopback unless the operator opens it (no token guards it: docs/DEPLOY.md "Metrics").
RTMS_METRICS_PORT = env_number("RTMS_METRICS_PORT", 0)
RTMS_METRICS_ADDR = env("RTMS_METRICS_ADDR", "127.0.0.1")
# One `all` media socket per stream when Zoom offers it (2 sockets per stream instead of 6), else one per media
# type. bench/streams_hold.py, 1,000 streams: 66 KiB per stream and 0.71 of a core, against 93 KiB and 0.74.
RTMS_SINGLE_MEDIA_SOCKET = env_bool("RTMS_SINGLE_MEDIA_SOCKET", True)
# The session host's event loop: uvloop (libuv, measured ~30% less CPU per stream than asyncio's own loop in
# bench/rtms_receive.py) or asyncio. uvloop falls back to asyncio where it is not installed (Windows).
RTMS_EVENT_LOOP = env("RTMS_EVENT_LOOP", "uvloop")
if RTMS_EVENT_LOOP not in ("uvloop", "asyncio"):
    raise ImproperlyConfigured(f"RTMS_EVENT_LOOP must be uvloop or asyncio, not {RTMS_EVENT_LOOP!r}")
# Where workers may open RTMS sockets (docs/SECURITY.md "Outbound connections"): exact hosts or `*.domain`,
# checked for the webhook's server_urls and the media URLs of the signaling reply; wss:// only unless
# RTMS_ALLOW_INSECURE_WS (bin/run and the tests allow the simulator's ws://127.0.0.1).
RTMS_ALLOWED_HOSTS = env_list("RTMS_ALLOWED_HOSTS", "*.zoom.us")
RTMS_ALLOW_INSECURE_WS = env_bool("RTMS_ALLOW_INSECURE_WS", False)
# Concurrent streams (not stopped) per app and per Zoom account; Zoom's own default limit is 2,000 per account.
RTMS_MAX_STREAMS_PER_APP = env_number("RTMS_MAX_STREAMS_PER_APP", 2000, minimum=1)
RTMS_MAX_STREAMS_PER_ACCOUNT = env_number("RTMS_MAX_STREAMS_PER_ACCOUNT", 2000, minimum=1)
# Claims a stream may take without ever connecting before it ends FAILED_NOT_CONNECTED (rtms/host.py).
RTMS_MAX_CONNECT_CLAIMS = env_number("RTMS_MAX_CONNECT_CLAIMS", 5, minimum=1)
# Streams one worker process holds at most (rtms/placement.py). bench/streams_hold.py on a shared 2-core machine:
# 500 streams took 0.33 of a core, store lag p99 140 ms, no frame lost; the default leaves room for a takeover's
# burst of handshakes and a slower core (README, "Holding streams").
RTMS_STREAMS_PER_PROCESS = env_number("RTMS_STREAMS_PER_PROCESS", 500, minimum=1)
# The reconciler (place again streams that lost their holder, repeat stops) is no job here: beat's process runs it
# on a thread of its own every RTMS_RECONCILE_INTERVAL, never behind tasks in a worker's pool (zoomapp/celery.py).
CELERY_BEAT_SCHEDULE = {
    # rtms/tasks.py: retention of stored media.
    # Every 10 minutes, 5 minutes of work at most each (rtms/stream_content.py PURGE_SECONDS).
    "rtms-purge-expired-media": {"task": "rtms.purge_expired_media", "schedule": 600.0},
    "console-purge-by-app-retention": {"task": "console.purge_by_app_retention", "schedule": 600.0},
    "webhooks-purge-old-deliveries": {"task": "webhooks.purge_old_deliveries", "schedule": 600.0},
    "consent-fail-stuck-starts": {"task": "consent.fail_stuck_starts", "schedule": 30.0},
    "consent-catch-up-with-streams": {"task": "consent.catch_up_with_streams", "schedule": 30.0},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOG_LEVEL = env("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"logfmt": {"()": "zoomapp.logfmt.LogfmtFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "logfmt"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        # A line per task received/succeeded and per beat tick buries the events that matter (the reconciler runs
        # every few seconds); our tasks log what they did themselves, and failures still log at ERROR.
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}
