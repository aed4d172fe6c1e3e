"""ccphost settings: one file, driven by environment variables.

Development defaults need nothing: SQLite, the embedded channel layer, a file cache.
Production: DEBUG=0 with SECRET_KEY, ALLOWED_HOSTS and SITE_URL set; DATABASE_URL and
REDIS_URL switch to PostgreSQL and channels_redis for several ASGI workers.
"""

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ccphost.affinity import parse_setting as parse_cpu_affinity
from ccphost.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CCPHOST_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0")
    SECRET_KEY = "ccphost-development-only-secret-key-never-use-in-production-0123456789"  # noqa: S105

SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in ("http", "https") or not _site.hostname:
    raise ImproperlyConfigured(f"SITE_URL must be an http(s) origin like https://ccp.example.com; got {SITE_URL!r}")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS",
    ["127.0.0.1", "localhost", "[::1]", _site.hostname] if DEBUG else [_site.hostname],
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL])

# Plain-HTTP origins are accepted only for loopback hosts, and only in development.
CCPHOST_ALLOW_HTTP_LOOPBACK = env_bool("CCPHOST_ALLOW_HTTP_LOOPBACK", DEBUG)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "ccphost.instances",
    "ccphost.engine",
    "ccphost.accounts",
    "ccphost.ccp",
    "integrations.webhooks",
    "integrations.streams",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside whitenoise's: its files are sent with an asynchronous iterator under ASGI.
    "ccphost.streaming.AsyncFileResponseMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ccphost.accounts.throttle.SignInThrottleMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "ccphost.urls"
ASGI_APPLICATION = "ccphost.asgi.application"
WSGI_APPLICATION = "ccphost.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ccphost.sqlite3'}"),
        # Persistent connections: opening one per request cost ~8% of an engine change
        # (measured with py-spy); health checks reopen a connection the server cut.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "ccphost.db.sqlite3"  # Django's, converting each statement once
    # A file test database, so tests with several threads or processes share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-ccphost.sqlite3")}
    # WAL and a busy timeout let the CCP socket and a management command write together.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # Parameters bound by the server, and statements run twice kept prepared (psycopg): the
    # engine runs the same few statements all day, and planning them again was 60% of
    # PostgreSQL's CPU per change (3.0 ms against 1.2 ms, measured on the project's VM).
    # Behind a pooler in transaction mode without prepared-statement support, set it to 0.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
# Threads running engine changes for the sockets of a process, on PostgreSQL (SQLite: one).
CCPHOST_ENGINE_THREADS = env_int("CCPHOST_ENGINE_THREADS", 2)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # redis-py 8 defaults socket_timeout to 5 s, which kills idle channels_redis
    # consumers (channels_redis issue 422): give the host as a dict with no timeout.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "ccphost.layers.PipelinedRedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": env_str("CCPHOST_CHANNEL_PREFIX", "ccphost"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CCPHOST_CACHE_PREFIX", "ccphost"),
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "ccphost.layers.SweepLimitedInMemoryChannelLayer",
            "CONFIG": {"capacity": 100, "expiry": 60},
        }
    }
    # A file cache, not a per-process memory cache: `manage.py origins remove` run from a
    # shell must invalidate what the serving process has cached.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses password sign-in while throttled, before any password is checked.
    "ccphost.accounts.backends.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Agents signed in by an instance's SAML identity provider (ccphost/accounts).
    "ccphost.accounts.backends.SamlAgentBackend",
]
# SAML single sign-on (ccphost/accounts, docs/sign-in.md). The service provider's key pair
# is made on first use when these files do not exist.
SAML_SP_KEY_FILE = Path(env_str("SAML_SP_KEY_FILE", str(VAR_DIR / "saml" / "sp-key.pem")))
SAML_SP_CERT_FILE = Path(env_str("SAML_SP_CERT_FILE", str(VAR_DIR / "saml" / "sp-cert.pem")))
SAML_XMLSEC_BINARY = env_str("SAML_XMLSEC_BINARY", "/usr/bin/xmlsec1")  # Debian's xmlsec1
SAML_ACCEPTED_TIME_DIFF = env_int("SAML_ACCEPTED_TIME_DIFF", 60)  # clock skew tolerated, seconds
SAML_REQUEST_LIFETIME = env_int("SAML_REQUEST_LIFETIME", 600)  # how long an AuthnRequest waits, seconds
# Sign-in throttling (ccphost/accounts/throttle.py): after this many failed password sign-ins
# for one username, or from one client address, sign-in as it or from it is refused, password
# unchecked, until CCPHOST_LOGIN_FAILURE_WINDOW seconds after the last failure. 0: no limit.
CCPHOST_LOGIN_FAILURES_PER_USERNAME = env_int("CCPHOST_LOGIN_FAILURES_PER_USERNAME", 10)
CCPHOST_LOGIN_FAILURES_PER_IP = env_int("CCPHOST_LOGIN_FAILURES_PER_IP", 50)
CCPHOST_LOGIN_FAILURE_WINDOW = env_int("CCPHOST_LOGIN_FAILURE_WINDOW", 900)
if min(CCPHOST_LOGIN_FAILURES_PER_USERNAME, CCPHOST_LOGIN_FAILURES_PER_IP) < 0 or CCPHOST_LOGIN_FAILURE_WINDOW < 1:
    raise ImproperlyConfigured(
        "CCPHOST_LOGIN_FAILURES_PER_USERNAME and CCPHOST_LOGIN_FAILURES_PER_IP must be at least 0, "
        "CCPHOST_LOGIN_FAILURE_WINDOW at least 1"
    )

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
# Production serves collected, compressed, hashed files; development and tests serve
# straight from static/ (no collectstatic step).
CCPHOST_MANIFEST_STATIC = env_bool("CCPHOST_MANIFEST_STATIC", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if CCPHOST_MANIFEST_STATIC
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not CCPHOST_MANIFEST_STATIC
WHITENOISE_AUTOREFRESH = not CCPHOST_MANIFEST_STATIC

# Security. Every page refuses to be framed, but for the CCP page, which replaces
# frame-ancestors with the instance's approved origins (ccphost.ccp.views).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin-allow-popups"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# The CCP is framed by other sites: its session and CSRF cookies must be sent in a
# third-party context, which browsers allow only for Secure cookies.
SESSION_COOKIE_SAMESITE = "None" if not DEBUG else "Lax"
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("CCPHOST_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Contact-center defaults (per instance values live on the Instance model).
CCPHOST_MAX_ORIGINS_PER_INSTANCE = 100
# Run the engine's timers (ring timeouts, callbacks, ...) in every ASGI process; exactly
# once across processes. Off for a process that must not (then run `manage.py run_timers`).
CCPHOST_TIMER_LOOP = env_bool("CCPHOST_TIMER_LOOP", True)
# Deliver webhooks and put event records to Kinesis from every ASGI process (or run
# `manage.py deliver_webhooks` and `manage.py forward_events` instead).
CCPHOST_BACKGROUND_DELIVERY = env_bool("CCPHOST_BACKGROUND_DELIVERY", True)
# Frames a client may send on one WebSocket (CCP, events, supervisor): a burst of
# CCPHOST_SOCKET_BURST, then CCPHOST_SOCKET_RATE a second. Heartbeats count. A frame over
# the limit gets an error frame (429) and is not handled; a client that keeps going is
# closed with 4429 (ccphost/ccp/ratelimit.py). The CCP page sends a heartbeat every 20 s.
CCPHOST_SOCKET_BURST = env_int("CCPHOST_SOCKET_BURST", 40)
CCPHOST_SOCKET_RATE = env_int("CCPHOST_SOCKET_RATE", 10)
if CCPHOST_SOCKET_BURST < 1 or CCPHOST_SOCKET_RATE < 1:
    raise ImproperlyConfigured("CCPHOST_SOCKET_BURST and CCPHOST_SOCKET_RATE must be at least 1")
# CPython's cycle collector in a serving process (applied by ccphost/asgi.py): with the
# interpreter's thresholds (700, 10, 10), a bench process holding 10,000 CCP sockets (some
# 6 M objects) stopped for full collections of up to 1.5 s, 35 times in one run. Then
# (100000, 50, 100) made full collections rare, but each young collection looked at
# 100,000 objects (115-235 ms on a slow day) and the middle one at up to 50 times that
# (a 2.6 s stop). (5000, 10, 1000): young collections of 16-47 ms, middle ones of at most
# 11 young ones' survivors (66-176 ms), and a full one at most every 55 M objects the
# process gains (10,000 sockets connecting gain 1.9 M), where it was 510 M; about 2% more
# of the time collecting (docs/performance.md). Three whole numbers, as for
# gc.set_threshold; empty: the defaults.
_gc_thresholds = env_list("CCPHOST_GC_THRESHOLDS", ["5000", "10", "1000"])
if _gc_thresholds and (len(_gc_thresholds) != 3 or not all(t.isdigit() for t in _gc_thresholds)):
    raise ImproperlyConfigured(
        f"CCPHOST_GC_THRESHOLDS must be three whole numbers, as 5000,10,1000; got {_gc_thresholds}"
    )
CCPHOST_GC_THRESHOLDS = tuple(int(t) for t in _gc_thresholds)

# Each serving process on one CPU, the workers of a machine spread over its CPUs: off
# (default), auto, or the CPU numbers to choose from (ccphost/affinity.py: what it gains
# and what it costs).
try:
    CCPHOST_CPU_AFFINITY = parse_cpu_affinity(env_str("CCPHOST_CPU_AFFINITY", "off"))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None

# An embedded server's engine changes in a process of their own, off the GIL of the event
# loop (ccphost/engine/process.py): auto (the default: with SQLite and the embedded channel
# layer) or off.
CCPHOST_ENGINE_PROCESS = env_str("CCPHOST_ENGINE_PROCESS", "auto").strip().lower()
if CCPHOST_ENGINE_PROCESS not in ("auto", "off"):
    raise ImproperlyConfigured(f"CCPHOST_ENGINE_PROCESS must be auto or off; got {CCPHOST_ENGINE_PROCESS!r}")
# The engine process runs up to this many calls that came together in one transaction (a
# group commit, engine.process.run_group); 1 runs each alone.
CCPHOST_ENGINE_GROUP = env_int("CCPHOST_ENGINE_GROUP", 16)
if CCPHOST_ENGINE_GROUP < 1:
    raise ImproperlyConfigured(f"CCPHOST_ENGINE_GROUP must be 1 or more; got {CCPHOST_ENGINE_GROUP}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
