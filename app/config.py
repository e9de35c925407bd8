"""Configuration: defaults, then PAIDAN_* environment variables, then a dict from tests."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Packages with their own translation catalog (app/<area>/translations), beside app's own;
# scripts/i18n.py extracts and compiles the same list.
TRANSLATION_AREAS = (
    "portal",
    "inbox",
    "tickets",
    "site",
    "attachments",
    "reports",
    "dispatch",
    "notify",
    "sla",
    "designer",
)


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


# name -> (default, parser). Every key can be set as PAIDAN_<NAME> in the environment.
SETTINGS: dict[str, tuple[object, object]] = {
    "SECRET_KEY": ("dev-only-change-me", str),
    "DATABASE_URL": ("", str),
    "PROCESSES_DIR": (str(PROJECT_ROOT / "processes"), str),
    # The embedded scheduler runs timers inside `flask serve`; production runs `flask worker`.
    "TIMER_INTERVAL_SECONDS": (5.0, float),
    "TIMER_BATCH_SIZE": (100, int),
    "TIMER_RETRY_SECONDS": (300, int),
    # The timer worker loop (`flask worker`): instances claimed and fired per transaction, and
    # how often it looks at the timer table where it cannot LISTEN (SQLite) or finds due timers
    # held by another worker.
    "TIMER_CLAIM_SIZE": (20, int),
    "TIMER_POLL_SECONDS": (1.0, float),
    # Process deployments (BPMN, DMN and form files).
    "MAX_UPLOAD_BYTES": (5 * 1024 * 1024, int),
    # Attachments: stored by content hash under this folder; limits per kind of file, and for
    # one request (a report with several photos and a video).
    "ATTACHMENT_DIR": ("", str),
    "ATTACHMENT_IMAGE_MAX_BYTES": (10 * 1024 * 1024, int),
    "ATTACHMENT_VIDEO_MAX_BYTES": (50 * 1024 * 1024, int),
    "ATTACHMENT_AUDIO_MAX_BYTES": (10 * 1024 * 1024, int),
    "ATTACHMENT_DOCUMENT_MAX_BYTES": (20 * 1024 * 1024, int),
    "ATTACHMENTS_PER_REQUEST": (10, int),
    "REQUEST_MAX_BYTES": (100 * 1024 * 1024, int),
    # Pages: how often the inbox asks for new work (seconds), and rows per page.
    "INBOX_REFRESH_SECONDS": (20, int),
    "INBOX_PAGE_SIZE": (30, int),
    # argon2id cost; tests lower it. Defaults are argon2-cffi's (RFC 9106 low-memory profile).
    "ARGON2_TIME_COST": (3, int),
    "ARGON2_MEMORY_COST": (65536, int),
    # Sign-in throttling: this many failures for one username within the window locks it.
    "LOGIN_MAX_FAILURES": (5, int),
    "LOGIN_WINDOW_SECONDS": (900, int),
    "PERSONAL_TOKEN_HOURS": (12, int),
    # Housekeeping: how long replay answers, expired sign-in tokens and sign-in attempts stay.
    "IDEMPOTENCY_KEEP_HOURS": (48, int),
    "EXPIRED_TOKEN_KEEP_DAYS": (7, int),
    "LOGIN_ATTEMPT_KEEP_DAYS": (90, int),
    "HOUSEKEEPING_INTERVAL_SECONDS": (3600, int),
    # Service reports of closed work orders are made by a job, not inside the archiving step.
    "SERVICE_REPORT_INTERVAL_SECONDS": (300, int),
    # Dispatch: a phone's position older than this falls back to today's check-in or the home
    # base; how often the job assigns pool tasks nobody grabbed in their group's wait.
    "POSITION_STALE_MINUTES": (30, int),
    "DISPATCH_POOL_INTERVAL_SECONDS": (60, int),
    "SQL_ECHO": (False, _bool),
    # Notifications: the channels besides the in-app list that get an outbox row per person
    # ("email", and names other jobs deliver, e.g. "wecom", "webhook"); links in messages
    # start with PUBLIC_BASE_URL. Email goes over SMTP; an empty MAIL_SMTP_HOST sends nothing
    # (the rows wait). A failed message is tried again after MAIL_RETRY_SECONDS, doubling.
    "NOTIFY_CHANNELS": (["email"], _names),
    "PUBLIC_BASE_URL": ("http://127.0.0.1:5000", str),
    "MAIL_SMTP_HOST": ("localhost", str),
    "MAIL_SMTP_PORT": (25, int),
    "MAIL_SMTP_STARTTLS": (False, _bool),
    "MAIL_SMTP_USERNAME": ("", str),
    "MAIL_SMTP_PASSWORD": ("", str),
    "MAIL_SMTP_TIMEOUT": (10.0, float),
    "MAIL_FROM": ("Paidan 派单 <paidan@localhost>", str),
    "MAIL_INTERVAL_SECONDS": (30, int),
    "MAIL_BATCH_SIZE": (50, int),
    "MAIL_RETRY_SECONDS": (60, int),
    "MAIL_MAX_ATTEMPTS": (10, int),
    # SLA escalation levels and reminders: how often running clocks are looked at.
    "SLA_ESCALATION_INTERVAL_SECONDS": (60, int),
}


def load_config(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the Flask config dict from defaults, PAIDAN_* variables and overrides."""
    config: dict[str, object] = {}
    for name, (default, parse) in SETTINGS.items():
        raw = os.environ.get(f"PAIDAN_{name}")
        config[name] = parse(raw) if raw is not None else default
    config.update(overrides or {})

    url = config["DATABASE_URL"] or f"sqlite:///{Path(instance_path) / 'paidan.sqlite3'}"
    config["SQLALCHEMY_DATABASE_URI"] = url
    config["SQLALCHEMY_ECHO"] = config["SQL_ECHO"]
    config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(url)
    config["MAX_CONTENT_LENGTH"] = max(config["MAX_UPLOAD_BYTES"], config["REQUEST_MAX_BYTES"])
    config["ATTACHMENT_DIR"] = config["ATTACHMENT_DIR"] or str(Path(instance_path) / "attachments")
    config["BABEL_DEFAULT_LOCALE"] = "zh"
    config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Shanghai"
    config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(
        str(PROJECT_ROOT / "app" / area / "translations") for area in ("", *TRANSLATION_AREAS)
    )
    config["JSON_AS_ASCII"] = False
    config.update(
        API_TITLE="Paidan 派单 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="v1/openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
    )
    return config


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Several threads (web + embedded scheduler) share one file: wait for the lock
        # instead of failing at once.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # PostgreSQL's JIT compiles any query its planner costs high (the visibility conditions with
    # their OR'd subqueries pass the threshold at a few thousand tasks): ~15 ms of compiling
    # for a query that runs in 5 ms. Web requests are short; JIT only pays for long analytics.
    return {"pool_pre_ping": True, "connect_args": {"options": "-c jit=off"}}
