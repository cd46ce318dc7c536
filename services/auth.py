"""Who is calling: API keys (hashed), roles, short-lived tokens, and secrets kept out of logs.

Roles, from least to most powerful:

- ``agent``: only the calls carrying the key's agent id. It starts calls (always
  as itself), reads, updates and ends them and their event trail, starts and
  stops their recordings and plays them; lists and statistics cover only its calls; another
  agent's call answers 404, as if it did not exist. Live: `calls` and
  `recordings` messages of its own calls; no `sip`, `metrics`, `performance`.
- ``supervisor``: reads everything (calls, recordings and their audio,
  statistics, quality, realtime metrics, SIP providers, settings, status; never
  secrets) and every live channel; starts, updates and ends any call and
  records it. It does not delete anything, change SIP gateways or credentials,
  run SIP connectivity tests (they send packets to any host), or read
  /api/health/detailed.
- ``admin``: everything.

The route-by-route table lives in blueprints/access/policy.py (POLICY); a route
missing from it is admin-only.
"""
import collections
import dataclasses
import datetime
import hashlib
import json
import logging
import re
import secrets
import threading

import jwt
import peewee

from models.auth import ApiKey
from models.call import Call
from models.db import make_database, utcnow
from models.migrations import upgrade
from models.recording import Recording
from services.database import database_connection
from services.errors import BadRequest, Conflict, Forbidden, NotFound

ROLES = ("agent", "supervisor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}

KEY_PREFIX = "cck_"
SHOWN_PREFIX_LENGTH = 10
TOKEN_TTL_SECONDS = 15 * 60
TOKEN_TYPE = "cc-access"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._@\-]{1,64}$")
AGENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@\-]{1,64}$")

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated caller: which key, which role, which agent (for agent keys)."""

    key_id: str
    name: str
    role: str
    agent_id: str | None = None
    via: str = "key"  # "key" or "token"

    def at_least(self, role):
        return _RANK[self.role] >= _RANK[role]

    @property
    def is_agent(self):
        return self.role == "agent"


# AUTH_ENABLED=false (local experiments only) acts as this admin.
AUTH_DISABLED_PRINCIPAL = Principal(key_id="-", name="auth-disabled", role="admin")


def hash_key(plaintext):
    """SHA-256 is enough here: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def generate_key():
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(credential):
    """JWTs have three dot-separated parts; API keys have none."""
    return credential.count(".") == 2


def _principal_of(api_key, via="key"):
    return Principal(key_id=api_key.id, name=api_key.name, role=api_key.role,
                     agent_id=api_key.agent_id, via=via)


def _validate_new_key(role, name, agent_id):
    errors = {}
    if role not in ROLES:
        errors["role"] = [f"must be one of {', '.join(ROLES)}"]
    if not NAME_PATTERN.match(name or ""):
        errors["name"] = ["must be 1-64 characters of letters, digits and . _ @ -"]
    if role == "agent" and not agent_id:
        errors["agent_id"] = ["agent keys need --agent-id: they see only that agent's calls"]
    elif agent_id and role != "agent":
        errors["agent_id"] = ["only agent keys carry an agent id"]
    elif agent_id and not AGENT_ID_PATTERN.match(agent_id):
        errors["agent_id"] = ["must be 1-64 characters of letters, digits and . _ : @ -"]
    if errors:
        raise BadRequest("invalid API key settings", errors=errors)


class ApiKeyService:
    """Creates, lists, revokes and checks API keys (on the bound database)."""

    def create(self, role, name, agent_id=None):
        """Store a new key's hash; returns (ApiKey, plaintext). The plaintext is never kept."""
        _validate_new_key(role, name, agent_id)
        plaintext = generate_key()
        try:
            api_key = ApiKey.create(name=name, role=role, agent_id=agent_id or None,
                                    prefix=plaintext[:SHOWN_PREFIX_LENGTH],
                                    key_hash=hash_key(plaintext))
        except peewee.IntegrityError:
            raise Conflict(f"a key named {name!r} exists already "
                           "(revoked keys keep their names)") from None
        return api_key, plaintext

    def list(self):
        return list(ApiKey.select().order_by(ApiKey.created_at, ApiKey.name))

    def revoke(self, name_or_id):
        api_key = (ApiKey.get_or_none(ApiKey.name == name_or_id)
                   or ApiKey.get_or_none(ApiKey.id == name_or_id))
        if api_key is None:
            raise NotFound(f"no API key named or with id {name_or_id!r}")
        if api_key.revoked_at is None:
            api_key.revoked_at = utcnow()
            api_key.save()
        return api_key

    def authenticate(self, plaintext):
        """The Principal of an active key, or None."""
        if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
            return None
        api_key = ApiKey.get_or_none((ApiKey.key_hash == hash_key(plaintext))
                                     & ApiKey.revoked_at.is_null())
        return _principal_of(api_key) if api_key else None

    def active_key(self, key_id):
        return ApiKey.get_or_none((ApiKey.id == key_id) & ApiKey.revoked_at.is_null())


class TokenService:
    """Short-lived signed tokens (JWT, HS256 with SECRET_KEY) for browsers.

    A token names the key it was issued for; revoking the key ends its tokens
    too, because every check also looks the key up.
    """

    def __init__(self, secret, keys=None, ttl=TOKEN_TTL_SECONDS):
        self.secret = secret
        self.keys = keys or ApiKeyService()
        self.ttl = ttl

    def issue(self, principal):
        """A token for principal; only API keys may be exchanged for tokens."""
        if principal.via != "key":
            raise Forbidden("tokens are issued in exchange for an API key, not another token")
        return self.refresh(principal)

    def refresh(self, principal):
        """A new token (same key, role and agent; a fresh expiry) for a principal that a
        valid token or key named: authenticating it checked that its key is still active."""
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        expires_at = now + datetime.timedelta(seconds=self.ttl)
        claims = {"typ": TOKEN_TYPE, "sub": principal.key_id, "name": principal.name,
                  "role": principal.role, "agent_id": principal.agent_id,
                  "iat": now, "exp": expires_at, "jti": secrets.token_urlsafe(8)}
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return {"token": token, "token_type": "Bearer", "expires_in": self.ttl,
                "expires_at": expires_at, "role": principal.role,
                "agent_id": principal.agent_id}

    def authenticate(self, token):
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"],
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != TOKEN_TYPE:
            return None
        api_key = self.keys.active_key(str(claims["sub"]))
        return _principal_of(api_key, via="token") if api_key else None


def authenticate(credential, secret):
    """The Principal for an API key or a token, or None when it is not valid."""
    if not credential or len(credential) > 4096:
        return None
    if looks_like_token(credential):
        return TokenService(secret).authenticate(credential)
    return ApiKeyService().authenticate(credential)


def create_key(role, name, agent_id=None, database_url=None):
    """Create a key and return its plaintext: for tests and scripts.

    With database_url the key goes into that database (brought to the newest
    schema first) without touching the process-wide binding; otherwise into the bound one.
    """
    if database_url is None:
        return ApiKeyService().create(role, name, agent_id)[1]
    database = make_database(database_url)
    try:
        with database.bind_ctx([ApiKey]), database.connection_context():
            upgrade(database)
            return ApiKeyService().create(role, name, agent_id)[1]
    finally:
        database.close()
        if hasattr(database, "close_all"):  # a pooled PostgreSQL database keeps connections
            database.close_all()


# ----- secrets kept out of logs ----------------------------------------------
_REDACTIONS = (
    # Authorization: Bearer <anything>
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+"), r"\1[REDACTED]"),
    # FreeSWITCH gateway XML: <param name="password" value="..."/>
    (re.compile(r"""(?i)(name\s*=\s*["'](?:password|secret|auth-password)["']\s+"""
                r"""value\s*=\s*["'])[^"']*"""), r"\1[REDACTED]"),
    # password=..., "password": "...", token=..., api_key: ... and friends
    (re.compile(r"""(?i)(["']?\b(?:password|passwd|pwd|secret|secret_key|token|api_key|"""
                r"""apikey|x-api-key|authorization)\b["']?\s*[=:]\s*["']?)"""
                r"""(?!\[REDACTED)[^\s"'&,;}\]]+"""), r"\1[REDACTED]"),
    # this service's API keys and JWTs wherever else they appear
    (re.compile(KEY_PREFIX + r"[A-Za-z0-9_\-]{8,}"), KEY_PREFIX + "[REDACTED]"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[REDACTED-JWT]"),
    # a signed recording URL's token is a credential too (services/recordings/signing.py)
    (re.compile(r"(/api/recordings/signed/)[A-Za-z0-9_.\-]+"), r"\1[REDACTED]"),
)


def redact(text):
    """text with anything that looks like a credential replaced by [REDACTED]."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class SecretRedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with credentials redacted."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a broken format must not lose the line
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


REDACTING_FILTER = SecretRedactingFilter()


def install_log_redaction(logger_names=("", "gunicorn.error", "gunicorn.access")):
    """Attach the redacting filter to every handler of these loggers (idempotent).

    Handler-level, so records propagated from any module's logger pass through it.
    """
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if REDACTING_FILTER not in handler.filters:
                handler.addFilter(REDACTING_FILTER)


# ----- who owns what: agents see only their own calls ------------------------
def call_owner(call_id):
    """The agent id of a call, or None (no such call, or no agent)."""
    row = Call.select(Call.agent_id).where(Call.id == str(call_id)).first()
    return row.agent_id if row else None


def recording_owner(recording_id):
    """The agent id of a recording's call, or None."""
    row = (Call.select(Call.agent_id).join(Recording)
           .where(Recording.id == str(recording_id)).first())
    return row.agent_id if row else None


# A route's view argument -> fn(value) giving the agent id that owns the resource.
def agent_owner(agent_id):
    """An agent owns itself: an agent key reaches /api/agents/<its own id> only."""
    return agent_id


OWNER_LOOKUPS = {"call_id": call_owner, "recording_id": recording_owner,
                 "agent_id": agent_owner}


def owner_of(argument, value):
    """(known, agent id): whether this view argument names an owned resource, and its owner."""
    lookup = OWNER_LOOKUPS.get(argument)
    return (False, None) if lookup is None else (True, lookup(value))


# ----- live channels: who may see which message ------------------------------
class CallOwners:
    """call id -> agent id, learnt from the `calls` channel (a call's agent never changes),
    so that filtering live messages for agents rarely needs the database."""

    def __init__(self, size=20000):
        self.size = size
        self.owners = collections.OrderedDict()
        self.lock = threading.Lock()

    def learn(self, call_id, agent_id):
        with self.lock:
            self.owners[call_id] = agent_id
            self.owners.move_to_end(call_id)
            while len(self.owners) > self.size:
                self.owners.popitem(last=False)

    def owner(self, call_id):
        if not call_id:
            return None
        with self.lock:
            if call_id in self.owners:
                return self.owners[call_id]
        try:
            with database_connection():
                agent_id = call_owner(call_id)
        except peewee.PeeweeException as exc:  # database trouble: deny rather than leak
            logger.warning("cannot tell who owns call %s: %s", call_id, exc)
            return None
        if agent_id is not None:
            self.learn(call_id, agent_id)
        return agent_id


CALL_OWNERS = CallOwners()


def can_receive(principal, envelope):
    """May a WebSocket client authenticated as principal see this live message?

    Admins and supervisors see every channel. Agents see `calls` and
    `recordings` messages of their own calls and `agents` messages about
    themselves only, and nothing else (no sip, queues, metrics or performance).
    No principal sees nothing.
    """
    data = envelope.get("data") or {}
    channel = envelope.get("channel")
    if channel == "calls" and data.get("id") and "agent_id" in data:
        CALL_OWNERS.learn(data["id"], data["agent_id"])
    if principal is None:
        return False
    if not principal.is_agent:
        return True
    if channel == "calls":
        owner = data["agent_id"] if "agent_id" in data else CALL_OWNERS.owner(data.get("id"))
    elif channel == "recordings":
        owner = data.get("agent_id") or CALL_OWNERS.owner(data.get("call_id"))
    elif channel == "agents":
        owner = data.get("id")
    else:
        return False
    return owner is not None and owner == principal.agent_id


def authenticate_message(message, secret):
    """The Principal from a WebSocket message {"type": "auth", "token"|"api_key": ...} or None."""
    if isinstance(message, (str, bytes)):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    if not isinstance(message, dict) or message.get("type") != "auth":
        return None
    credential = message.get("token") or message.get("api_key")
    if not isinstance(credential, str):
        return None
    with database_connection():
        return authenticate(credential, secret)
