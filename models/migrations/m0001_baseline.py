"""Migration 0001: the schema as `create_tables()` made it before migrations existed (baseline).

Frozen on purpose: these classes are copies of the models of that day, written
out here, so that later changes to the live models cannot change what this
step creates. Never edit them; change the schema in a new migration.
"""
import datetime

import peewee

VERSION = 1
NAME = "baseline"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class Call(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36)
    fs_uuid = peewee.CharField(max_length=64, null=True, unique=True)
    fs_job_uuid = peewee.CharField(max_length=64, null=True, index=True)
    direction = peewee.CharField(max_length=10, default="outbound")
    from_number = peewee.CharField(max_length=64, null=True)
    to_number = peewee.CharField(max_length=64, null=True, index=True)
    caller_id = peewee.CharField(max_length=128, null=True)
    agent_id = peewee.CharField(max_length=64, null=True, index=True)
    campaign_id = peewee.CharField(max_length=64, null=True, index=True)
    gateway = peewee.CharField(max_length=64, null=True)
    status = peewee.CharField(max_length=16, default="initiated", index=True)
    hangup_cause = peewee.CharField(max_length=64, null=True)
    status_reason = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DateTimeField(default=_now, index=True)
    ringing_at = peewee.DateTimeField(null=True)
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=_now)
    duration = peewee.IntegerField(null=True)
    billsec = peewee.IntegerField(null=True)
    outcome = peewee.CharField(max_length=64, null=True)
    notes = peewee.TextField(null=True)
    metadata = peewee.TextField(null=True)
    idempotency_key = peewee.CharField(max_length=255, null=True, unique=True)
    record = peewee.BooleanField(default=False)
    record_format = peewee.CharField(max_length=8, null=True)
    rtp_stats = peewee.TextField(null=True)
    quality = peewee.TextField(null=True)

    class Meta:
        table_name = "call"
        indexes = (
            (("status", "created_at"), False),
            (("agent_id", "created_at"), False),
            (("campaign_id", "created_at"), False),
        )


class CallEvent(Frozen):
    id = peewee.BigAutoField()
    call = peewee.ForeignKeyField(Call, on_delete="CASCADE", index=True)
    created_at = peewee.DateTimeField(default=_now)
    source = peewee.CharField(max_length=16)
    event_name = peewee.CharField(max_length=64)
    from_status = peewee.CharField(max_length=16, null=True)
    to_status = peewee.CharField(max_length=16, null=True)
    data = peewee.TextField(null=True)

    class Meta:
        table_name = "call_event"


class Recording(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36)
    call = peewee.ForeignKeyField(Call, on_delete="CASCADE", unique=True)
    status = peewee.CharField(max_length=16, default="recording", index=True)
    format = peewee.CharField(max_length=8)
    fs_uuid = peewee.CharField(max_length=64, null=True)
    source_path = peewee.CharField(max_length=255, index=True)
    files = peewee.TextField(null=True)
    duration = peewee.FloatField(null=True)
    sample_rate = peewee.IntegerField(null=True)
    channels = peewee.IntegerField(null=True)
    size = peewee.BigIntegerField(null=True)
    sha256 = peewee.CharField(max_length=64, null=True)
    limit_seconds = peewee.IntegerField(null=True)
    truncated = peewee.BooleanField(default=False)
    error = peewee.CharField(max_length=255, null=True)
    fs_record_ms = peewee.BigIntegerField(null=True)
    fs_completion_cause = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=_now, index=True)
    started_at = peewee.DateTimeField(null=True)
    stopped_at = peewee.DateTimeField(null=True)
    ready_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "recording"
        indexes = (
            (("status", "created_at"), False),
            (("format", "created_at"), False),
        )


class SipGateway(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36)
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
    codecs = peewee.TextField(null=True)
    expiry = peewee.IntegerField(default=3600)
    outbound_proxy = peewee.CharField(max_length=255, null=True)
    enabled = peewee.BooleanField(default=True)
    version = peewee.IntegerField(default=1)
    apply_state = peewee.CharField(max_length=16, default="pending", index=True)
    apply_detail = peewee.CharField(max_length=255, null=True)
    applied_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "sip_gateway"


class SipGatewayState(Frozen):
    name = peewee.CharField(primary_key=True, max_length=64)
    state = peewee.CharField(max_length=16)
    ping_status = peewee.CharField(max_length=8, null=True)
    status_code = peewee.IntegerField(null=True)
    phrase = peewee.CharField(max_length=128, null=True)
    failure_reason = peewee.CharField(max_length=160, null=True)
    failure_at = peewee.DateTimeField(null=True)
    changed_at = peewee.DateTimeField(default=_now)
    event_at = peewee.DateTimeField(default=_now)
    core_uuid = peewee.CharField(max_length=64, null=True)
    event_seq = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "sip_gateway_state"


class QualitySample(Frozen):
    id = peewee.BigAutoField()
    call = peewee.ForeignKeyField(Call, on_delete="CASCADE", index=True)
    created_at = peewee.DateTimeField(default=_now)
    latency_ms = peewee.FloatField()
    jitter_ms = peewee.FloatField()
    packet_loss_pct = peewee.FloatField()
    mos = peewee.FloatField()
    r_factor = peewee.FloatField(null=True)
    mos_source = peewee.CharField(max_length=8)
    crossed = peewee.BooleanField(default=False)
    alert_active = peewee.BooleanField(default=False)

    class Meta:
        table_name = "quality_sample"


class Measures(Frozen):
    """The sums the fact and rollup tables share (not a table itself)."""

    calls = peewee.IntegerField(default=0)
    answered = peewee.IntegerField(default=0)
    completed = peewee.IntegerField(default=0)
    busy = peewee.IntegerField(default=0)
    no_answer = peewee.IntegerField(default=0)
    failed = peewee.IntegerField(default=0)
    canceled = peewee.IntegerField(default=0)
    billsec = peewee.BigIntegerField(default=0)
    handle_seconds = peewee.BigIntegerField(default=0)
    mos_milli = peewee.BigIntegerField(default=0)
    mos_calls = peewee.IntegerField(default=0)
    mos_below = peewee.IntegerField(default=0)


class CallFact(Measures):
    call_id = peewee.CharField(max_length=36, primary_key=True)
    created_epoch = peewee.BigIntegerField()
    bucket = peewee.BigIntegerField()
    day = peewee.IntegerField()
    agent_id = peewee.CharField(max_length=64, default="")
    campaign_id = peewee.CharField(max_length=64, default="")
    gateway = peewee.CharField(max_length=64, default="")
    outcome = peewee.CharField(max_length=64, default="")
    status = peewee.CharField(max_length=16)

    class Meta:
        table_name = "call_fact"
        indexes = (
            (("created_epoch",), False),
            (("agent_id", "created_epoch"), False),
            (("campaign_id", "created_epoch"), False),
            (("gateway", "created_epoch"), False),
        )


class QuarterHourRollup(Measures):
    bucket = peewee.BigIntegerField(unique=True)

    class Meta:
        table_name = "quarter_hour_rollup"


class DailyRollup(Measures):
    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    day = peewee.IntegerField()

    class Meta:
        table_name = "daily_rollup"
        indexes = ((("dim", "day", "key"), True),)


class QuarterHourOutcome(Frozen):
    bucket = peewee.BigIntegerField()
    outcome = peewee.CharField(max_length=64)
    calls = peewee.IntegerField(default=0)

    class Meta:
        table_name = "quarter_hour_outcome"
        indexes = ((("bucket", "outcome"), True), (("bucket", "outcome", "calls"), False))


class DailyOutcome(Frozen):
    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    day = peewee.IntegerField()
    outcome = peewee.CharField(max_length=64)
    calls = peewee.IntegerField(default=0)

    class Meta:
        table_name = "daily_outcome"
        indexes = ((("dim", "day", "key", "outcome"), True),
                   (("dim", "day", "key", "outcome", "calls"), False))


class ApiKey(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36)
    name = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=16)
    key_hash = peewee.CharField(max_length=64, unique=True)
    role = peewee.CharField(max_length=16)
    agent_id = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=_now)
    revoked_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "api_key"


MODELS = [Call, CallEvent, Recording, SipGateway, SipGatewayState, QualitySample, CallFact,
          QuarterHourRollup, DailyRollup, QuarterHourOutcome, DailyOutcome, ApiKey]


def apply(database, migrator):
    """Create the baseline tables and indexes; those a pre-migration database has are kept."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
