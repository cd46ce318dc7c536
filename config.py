"""All configuration, read from the environment in one place."""
import os
import re

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

_SIZE_UNITS = {"": 1, "B": 1, "KB": 1024, "K": 1024, "MB": 1024**2, "M": 1024**2,
               "GB": 1024**3, "G": 1024**3}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up, never at request time."""


def parse_size(value):
    """'100MB' -> 104857600; plain integers are bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?B?)\s*", str(value).upper())
    if not match:
        raise ConfigError(f"cannot read size {value!r} (use e.g. 100MB)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _bool(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _number(kind, what):
    def read(value):
        try:
            return kind(value)
        except ValueError:
            raise ConfigError(f"must be {what}, got {value!r}") from None
    return read


_int = _number(int, "an integer")
_float = _number(float, "a number")


def _text(value):
    return value


# (variable, reader of its text, default): the README's configuration table lists
# exactly these (tests/unit/test_config.py checks it). An empty value counts as
# unset; a text default is read like a value (so "./recordings" is made absolute).
SETTINGS = (
    ("PORT", _int, 3001),
    ("FRONTEND_URL", _text, "http://localhost:3000"),
    ("DATABASE_URL", _text, "sqlite:///" + os.path.join(BASE_DIR, "callcenter.db")),
    ("REDIS_URL", _text, "redis://127.0.0.1:6379/0"),
    ("FREESWITCH_HOST", _text, "127.0.0.1"),
    ("FREESWITCH_PORT", _int, 8021),
    ("FREESWITCH_PASSWORD", _text, "ClueCon"),
    ("FREESWITCH_TIMEOUT", _float, 5.0),
    ("FREESWITCH_PROFILE", _text, "external"),
    ("FREESWITCH_ORIGINATE_TIMEOUT", _int, 45),
    ("FREESWITCH_GATEWAY_DIR", _text, os.path.join(BASE_DIR, "freeswitch", "conf", "gateways")),
    ("DEFAULT_GATEWAY", _text, ""),
    ("SIP_APPLY_RETRY_INTERVAL", _float, 3.0),
    ("SIP_TEST_TIMEOUT", _float, 3.0),
    ("SIP_RECORDING_PATH", os.path.abspath, "./recordings"),
    ("MAX_RECORDING_SIZE", parse_size, "100MB"),
    ("RECORDING_FORMAT", _text, "mp3"),
    ("RECORDING_RETENTION_DAYS", _int, None),
    ("RECORDING_KEEP_WAV", _bool, True),
    ("RECORDING_MAINTENANCE_INTERVAL", _float, 3600.0),
    ("RECORDING_SOURCE_WAIT", _float, 20.0),
    ("RECORDING_STEREO", _bool, True),
    ("TRANSCRIPTION_ENABLED", _bool, True),
    ("TRANSCRIPTION_MODEL_PATH", _text, ""),
    ("TRANSCRIPTION_LANGUAGE", _text, "en"),
    ("TRANSCRIPTION_MAX_SIZE", parse_size, "1GB"),
    ("TRANSCRIPTION_JOB_TIMEOUT", _int, 3600),
    ("TRANSCRIPT_PHRASES", _text, ""),
    ("WEBSOCKET_HEARTBEAT", _int, 30000),
    ("WEBSOCKET_MAX_MESSAGE", _int, 64 * 1024),
    ("WEBSOCKET_QUEUE_SIZE", _int, 1000),
    ("STREAM_HISTORY", _int, 1000),
    ("METRICS_INTERVAL", _float, 10.0),
    ("SLOW_REQUEST_SECONDS", _float, 1.0),
    ("MEMORY_ALERT_MB", _int, 1024),
    ("QUEUE_BACKLOG_ALERT", _int, 1000),
    ("EVENT_BATCH_SIZE", _int, 100),
    ("EVENT_BATCH_WAIT", _float, 0.005),
    ("RECONCILE_INTERVAL", _float, 60.0),
    ("QUALITY_SWEEP_INTERVAL", _float, 600.0),
    ("AGENT_WRAPUP_CHECK_INTERVAL", _float, 1.0),
    ("INBOUND_DEFAULT_QUEUE", _text, ""),
    ("QUEUE_SNAPSHOT_INTERVAL", _float, 1.0),
    ("QUEUE_SNAPSHOT_REFRESH", _float, 30.0),
    ("QUEUE_ROLLUP_INTERVAL", _float, 60.0),
    ("QUEUE_ROLLUP_LOOKBACK", _int, 10800),
    ("MAX_CONTENT_LENGTH", _int, 1024 * 1024),
    ("RATELIMIT_DEFAULT", _text, "1000 per minute"),
    ("RATELIMIT_ANONYMOUS", _text, "100 per 15 minutes"),
    ("RATELIMIT_ENABLED", _bool, True),
    ("AUTH_ENABLED", _bool, True),
    ("PROXY_FIX_HOPS", _int, 0),
    ("QUALITY_JITTER_MS", _float, 30.0),
    ("QUALITY_LOSS_PCT", _float, 1.0),
    ("QUALITY_RTT_MS", _float, 400.0),
    ("QUALITY_MOS_MIN", _float, 3.5),
    ("WEBHOOK_ALLOW_PRIVATE", _bool, False),
    ("WEBHOOK_TIMEOUT", _float, 5.0),
    ("WEBHOOK_RETRY_SCHEDULE", _text, "5,300,1800,7200,18000,36000,36000"),
    ("WEBHOOK_DISABLE_AFTER", _float, 259200.0),
    ("WEBHOOK_WORKERS", _int, 4),
    ("WEBHOOK_SWEEP_INTERVAL", _float, 30.0),
    ("WEBHOOK_CALLBACK_SECRET", _text, ""),
    ("LOG_LEVEL", _text, "INFO"),
    ("SECRET_KEY", _text, ""),
    ("FREESWITCH_NODES", _text, ""),
    ("METRICS_TOKEN", _text, ""),
    ("TOKEN_TTL", _int, 900),
    ("RECORDING_URL_TTL", _int, 300),
    # Browser phones (services/agents/phones.py, README "Browser phone (WebRTC)")
    ("FREESWITCH_DIRECTORY_DIR", _text, ""),
    ("PHONE_WS_URL", _text, ""),
    ("PHONE_SIP_DOMAIN", _text, ""),
    ("PHONE_SIP_PROFILE", _text, "internal"),
    ("PHONE_ICE_SERVERS", _text, ""),
    ("PHONE_REGISTER_EXPIRES", _int, 120),
    ("PHONE_CHECK_INTERVAL", _float, 5.0),
)

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


def read_setting(env, name, reader, default):
    """One setting from env: its default when unset or empty, else its parsed value."""
    raw = env.get(name)
    if raw in (None, ""):
        if not isinstance(default, str):
            return default
        raw = default
    try:
        return reader(raw)
    except ConfigError as exc:
        raise ConfigError(f"{name} {exc}") from None


def database_url(env=None):
    """DATABASE_URL alone, for commands that need nothing else (`python -m models.migrate`)."""
    env = os.environ if env is None else env
    return read_setting(env, *next(s for s in SETTINGS if s[0] == "DATABASE_URL"))


def load_config(env=None):
    """Build the settings dict from the environment (os.environ by default)."""
    env = os.environ if env is None else env
    # APP_ENV; FLASK_ENV is the older name Flask itself no longer reads.
    production = env.get("APP_ENV", env.get("FLASK_ENV", "development")) == "production"
    cfg = {"ENV": "production" if production else "development"}
    cfg.update((name, read_setting(env, name, reader, default))
               for name, reader, default in SETTINGS)
    if not cfg["SECRET_KEY"]:
        if production:
            raise ConfigError(
                "SECRET_KEY is not set. It encrypts SIP passwords and signs tokens; "
                "set it to a long random value (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`) before starting in production.")
        cfg["SECRET_KEY"] = DEV_SECRET_KEY
    if production and cfg["FREESWITCH_PASSWORD"] == "ClueCon" and not env.get(
            "FREESWITCH_PASSWORD"):
        raise ConfigError("FREESWITCH_PASSWORD is not set; production refuses the "
                          "default ClueCon password.")
    return cfg
