"""All configuration, read from the environment in one place."""
import os
import re

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


def _int(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


def load_config(env=None):
    """Build the settings dict from the environment (os.environ by default)."""
    env = os.environ if env is None else env
    base_dir = os.path.dirname(os.path.abspath(__file__))
    production = env.get("APP_ENV", env.get("FLASK_ENV", "development")) == "production"
    cfg = {
        "ENV": "production" if production else "development",
        "PORT": _int(env, "PORT", 3001),
        "FRONTEND_URL": env.get("FRONTEND_URL", "http://localhost:3000"),
        "DATABASE_URL": env.get("DATABASE_URL")
        or "sqlite:///" + os.path.join(base_dir, "callcenter.db"),
        "REDIS_URL": env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "FREESWITCH_HOST": env.get("FREESWITCH_HOST", "127.0.0.1"),
        "FREESWITCH_PORT": _int(env, "FREESWITCH_PORT", 8021),
        "FREESWITCH_PASSWORD": env.get("FREESWITCH_PASSWORD", "ClueCon"),
        "FREESWITCH_TIMEOUT": _float(env, "FREESWITCH_TIMEOUT", 5.0),
        "FREESWITCH_PROFILE": env.get("FREESWITCH_PROFILE", "external"),
        "FREESWITCH_ORIGINATE_TIMEOUT": _int(env, "FREESWITCH_ORIGINATE_TIMEOUT", 45),
        "FREESWITCH_GATEWAY_DIR": env.get(
            "FREESWITCH_GATEWAY_DIR",
            os.path.join(base_dir, "freeswitch", "conf", "gateways")),
        "DEFAULT_GATEWAY": env.get("DEFAULT_GATEWAY", ""),
        "SIP_APPLY_RETRY_INTERVAL": _float(env, "SIP_APPLY_RETRY_INTERVAL", 3.0),
        "SIP_TEST_TIMEOUT": _float(env, "SIP_TEST_TIMEOUT", 3.0),
        "SIP_RECORDING_PATH": os.path.abspath(env.get("SIP_RECORDING_PATH", "./recordings")),
        "MAX_RECORDING_SIZE": parse_size(env.get("MAX_RECORDING_SIZE", "100MB")),
        "RECORDING_FORMAT": env.get("RECORDING_FORMAT", "mp3"),
        "RECORDING_RETENTION_DAYS": _int(env, "RECORDING_RETENTION_DAYS", None),
        "RECORDING_KEEP_WAV": _bool(env.get("RECORDING_KEEP_WAV", "true")),
        "RECORDING_MAINTENANCE_INTERVAL": _float(env, "RECORDING_MAINTENANCE_INTERVAL", 3600.0),
        "RECORDING_SOURCE_WAIT": _float(env, "RECORDING_SOURCE_WAIT", 20.0),
        "WEBSOCKET_HEARTBEAT": _int(env, "WEBSOCKET_HEARTBEAT", 30000),
        "WEBSOCKET_MAX_MESSAGE": _int(env, "WEBSOCKET_MAX_MESSAGE", 64 * 1024),
        "WEBSOCKET_QUEUE_SIZE": _int(env, "WEBSOCKET_QUEUE_SIZE", 1000),
        "STREAM_HISTORY": _int(env, "STREAM_HISTORY", 1000),
        "METRICS_INTERVAL": _float(env, "METRICS_INTERVAL", 10.0),
        "SLOW_REQUEST_SECONDS": _float(env, "SLOW_REQUEST_SECONDS", 1.0),
        "MEMORY_ALERT_MB": _int(env, "MEMORY_ALERT_MB", 1024),
        "QUEUE_BACKLOG_ALERT": _int(env, "QUEUE_BACKLOG_ALERT", 1000),
        "EVENT_BATCH_SIZE": _int(env, "EVENT_BATCH_SIZE", 500),
        "EVENT_BATCH_WAIT": _float(env, "EVENT_BATCH_WAIT", 0.02),
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 1024 * 1024),
        "RATELIMIT_DEFAULT": env.get("RATELIMIT_DEFAULT", "1000 per minute"),
        "RATELIMIT_ANONYMOUS": env.get("RATELIMIT_ANONYMOUS", "100 per 15 minutes"),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED", "true")),
        "AUTH_ENABLED": _bool(env.get("AUTH_ENABLED", "true")),
        "PROXY_FIX_HOPS": _int(env, "PROXY_FIX_HOPS", 0),
        "QUALITY_JITTER_MS": _float(env, "QUALITY_JITTER_MS", 30.0),
        "QUALITY_LOSS_PCT": _float(env, "QUALITY_LOSS_PCT", 1.0),
        "QUALITY_RTT_MS": _float(env, "QUALITY_RTT_MS", 400.0),
        "QUALITY_MOS_MIN": _float(env, "QUALITY_MOS_MIN", 3.5),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        "SECRET_KEY": env.get("SECRET_KEY", ""),
    }
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
