"""Analytics schemas: live quality samples, statistics and quality-trend queries and answers."""
from marshmallow import Schema, fields, post_load, validate
from webargs.fields import DelimitedList

from services.fields import IDENT, FullMatch

GATEWAY = FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$")


class QualitySampleSchema(Schema):
    """One live measurement a client pushes with PUT /api/calls/<id>/update."""

    latency_ms = fields.Float(required=True, validate=validate.Range(min=0, max=60000),
                              metadata={"description": "round-trip time in ms"})
    jitter_ms = fields.Float(required=True, validate=validate.Range(min=0, max=10000))
    packet_loss_pct = fields.Float(required=True, validate=validate.Range(min=0, max=100),
                                   metadata={"description": "lost packets in percent (0-100)"})
    mos = fields.Float(allow_none=True, validate=validate.Range(min=1, max=5), metadata={
        "description": "the client's own MOS; computed with the E-model when absent"})

    @post_load
    def _round(self, data, **kwargs):
        # Measurements finer than a microsecond or 1e-6 % mean nothing, and
        # values like 1e-227 do not fit PostgreSQL's float columns.
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in data.items()}


class RangeArgsSchema(Schema):
    date_from = fields.Date(metadata={
        "description": "first local day, inclusive (default: 29 days before date_to)"})
    date_to = fields.Date(metadata={"description": "last local day, inclusive (default: today)"})
    time_zone = fields.String(load_default="UTC", validate=validate.Length(max=64), metadata={
        "description": "IANA time zone the days are counted in", "example": "Europe/Berlin"})
    agent_id = fields.String(validate=IDENT)
    campaign_id = fields.String(validate=IDENT)
    gateway = fields.String(validate=GATEWAY)


class StatisticsQueryArgsSchema(RangeArgsSchema):
    period = fields.String(validate=validate.OneOf(["day", "week", "month"]), metadata={
        "description": "adds a series of local day / ISO week (Monday) / month buckets"})
    group_by = fields.String(validate=validate.OneOf(["agent", "campaign"]),
                             metadata={"description": "adds one row per agent or campaign"})
    conversion_outcomes = DelimitedList(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=50),
        metadata={"description": "outcomes that count as a conversion, comma-separated "
                                 "(default: sale,converted,success)"})


class QualityQueryArgsSchema(RangeArgsSchema):
    period = fields.String(load_default="day", validate=validate.OneOf(["day", "week", "month"]))
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=100),
                           metadata={"description": "how many worst gateways to list"})
    min_calls = fields.Integer(load_default=1, validate=validate.Range(min=1), metadata={
        "description": "a gateway is ranked once it has this many calls with a MOS"})


class FiguresSchema(Schema):
    calls = fields.Integer(metadata={"description": "ended calls started in the range"})
    answered = fields.Integer()
    answer_rate = fields.Float(allow_none=True)
    completed = fields.Integer()
    busy = fields.Integer()
    no_answer = fields.Integer()
    failed = fields.Integer()
    canceled = fields.Integer()
    talk_time_total = fields.Integer(metadata={"description": "sum of billsec, seconds"})
    talk_time_avg = fields.Float(allow_none=True, metadata={
        "description": "billsec per answered call, seconds"})
    handle_time_avg = fields.Float(allow_none=True, metadata={
        "description": "duration (dial to hangup) per answered call, seconds"})
    mos_avg = fields.Float(allow_none=True)
    mos_calls = fields.Integer(metadata={"description": "calls with a MOS"})
    below_mos_share = fields.Float(allow_none=True, metadata={
        "description": "share of calls with a MOS below QUALITY_MOS_MIN"})
    outcomes = fields.Dict(keys=fields.String(), values=fields.Integer())
    conversions = fields.Integer()
    conversion_rate = fields.Float(allow_none=True, metadata={
        "description": "conversions per answered call"})


class BucketSchema(FiguresSchema):
    period_start = fields.String(metadata={"description": "local date the bucket starts on"})
    start = fields.String(metadata={"description": "local start (ISO-8601 with offset), "
                                                   "clipped to the range"})
    end = fields.String()


class GroupSchema(FiguresSchema):
    agent_id = fields.String(allow_none=True)
    campaign_id = fields.String(allow_none=True)


class ComputedFromSchema(Schema):
    """Where each part of a statistics answer was read from."""

    totals = fields.String(metadata={"enum": ["rollups", "facts"]})
    groups = fields.String(metadata={"enum": ["rollups", "facts"],
                                     "description": "present with group_by"})


class StatisticsSchema(Schema):
    time_zone = fields.String()
    date_from = fields.Date()
    date_to = fields.Date()
    period = fields.String(allow_none=True)
    group_by = fields.String(allow_none=True)
    conversion_outcomes = fields.List(fields.String())
    totals = fields.Nested(FiguresSchema)
    series = fields.List(fields.Nested(BucketSchema), allow_none=True)
    groups = fields.List(fields.Nested(GroupSchema), allow_none=True)
    computed_from = fields.Nested(ComputedFromSchema, metadata={
        "description": "rollups or facts, per part of the answer"})


class QualityFiguresSchema(Schema):
    calls = fields.Integer()
    mos_calls = fields.Integer()
    mos_avg = fields.Float(allow_none=True)
    below_mos_share = fields.Float(allow_none=True)


class QualityBucketSchema(QualityFiguresSchema):
    period_start = fields.String()
    start = fields.String()
    end = fields.String()


class GatewayQualitySchema(QualityFiguresSchema):
    gateway = fields.String(allow_none=True)


class QualityTrendsSchema(Schema):
    time_zone = fields.String()
    date_from = fields.Date()
    date_to = fields.Date()
    period = fields.String()
    mos_threshold = fields.Float()
    overall = fields.Nested(QualityFiguresSchema)
    series = fields.List(fields.Nested(QualityBucketSchema))
    worst_gateways = fields.List(fields.Nested(GatewayQualitySchema))
    computed_from = fields.String(metadata={"enum": ["rollups", "facts"]})
