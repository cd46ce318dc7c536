"""SIP gateways (the carrier trunks FreeSWITCH uses) and their last known registration state."""
import peewee

from models.db import BaseModel, JSONTextField, new_id, utcnow


class SipGateway(BaseModel):
    """A sofia gateway this service manages: written to FREESWITCH_GATEWAY_DIR/<name>.xml.

    The password is stored only as a Fernet token (services/crypto.py); the
    plain text exists in memory while rendering the gateway file, and in that
    file (mode 0600), because FreeSWITCH has to send it.

    apply_state tells whether FreeSWITCH runs the configuration as stored:
    `applied`, `pending` (FreeSWITCH was unreachable; the events process applies
    it when FreeSWITCH answers again), `failed` (FreeSWITCH refused it; see
    apply_detail) or `removing` (deleted here; FreeSWITCH still to be told).
    """

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    name = peewee.CharField(max_length=64, unique=True)
    provider = peewee.CharField(max_length=32, default="custom")
    host = peewee.CharField(max_length=255)
    port = peewee.IntegerField()
    transport = peewee.CharField(max_length=8)
    username = peewee.CharField(max_length=128, null=True)
    auth_username = peewee.CharField(max_length=128, null=True)
    password_encrypted = peewee.TextField(null=True)
    register = peewee.BooleanField(default=True)
    caller_id = peewee.CharField(max_length=64, null=True)
    codecs = JSONTextField(null=True)
    expiry = peewee.IntegerField(default=3600)
    outbound_proxy = peewee.CharField(max_length=255, null=True)
    enabled = peewee.BooleanField(default=True)
    # Bumped on every change, so that a late apply of an older version cannot
    # mark a newer one as applied.
    version = peewee.IntegerField(default=1)
    apply_state = peewee.CharField(max_length=16, default="pending", index=True)
    apply_detail = peewee.CharField(max_length=255, null=True)
    applied_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    APPLY_STATES = ("applied", "pending", "failed", "removing")

    @property
    def password_set(self):
        return bool(self.password_encrypted)


class SipGatewayState(BaseModel):
    """The last `sofia::gateway_state` event of a gateway, as the events process recorded it.

    Kept apart from SipGateway so that the events process (writing states) and
    the web process (writing configuration) never update the same row.
    (core_uuid, event_seq) identify the last event applied: FreeSWITCH numbers
    its events per run, so a replayed or duplicated event is recognised and
    changes nothing.
    """

    name = peewee.CharField(primary_key=True, max_length=64)
    state = peewee.CharField(max_length=16)
    ping_status = peewee.CharField(max_length=8, null=True)
    status_code = peewee.IntegerField(null=True)
    phrase = peewee.CharField(max_length=128, null=True)
    failure_reason = peewee.CharField(max_length=160, null=True)
    failure_at = peewee.DateTimeField(null=True)
    changed_at = peewee.DateTimeField(default=utcnow)
    event_at = peewee.DateTimeField(default=utcnow)
    core_uuid = peewee.CharField(max_length=64, null=True)
    event_seq = peewee.BigIntegerField(default=0)


MODELS = [SipGateway, SipGatewayState]
