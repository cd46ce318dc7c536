"""Queue KPI schemas: statistics and staffing query arguments and answers."""
import datetime
import zoneinfo

from marshmallow import Schema, ValidationError, fields, validate

from services.fields import FullMatch
from services.queues.buckets import INTERVALS
from services.queues.staffing import PLANNING_INTERVALS

DATE_OR_TIME = FullMatch(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?"
                         r"(Z|[+-][0-9]{2}:[0-9]{2})?)?$",
                         error="must be a date (2026-12-01) or date-time (2026-12-01T09:00)")


class LocalDateOrTime(fields.String):
    """A date (a local day) or a date-time (naive: local wall time; or with an offset)."""

    def __init__(self, **kwargs):
        metadata = dict(kwargs.pop("metadata", {}), pattern=DATE_OR_TIME.regex.pattern)
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        DATE_OR_TIME(value)
        try:
            if len(value) == 10:
                parsed = datetime.date.fromisoformat(value)
            else:
                parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("must be a date (2026-12-01) or date-time "
                                  "(2026-12-01T09:00)") from None
        if not 1971 <= parsed.year <= 9000:
            raise ValidationError("the year must be between 1971 and 9000")
        return parsed


def _zone(name):
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError("not an IANA time zone") from None


class KpiRangeArgsSchema(Schema):
    date_from = LocalDateOrTime(data_key="from", metadata={
        "description": "start: a local day or local date-time (default: see interval)",
        "example": "2026-12-01"})
    date_to = LocalDateOrTime(data_key="to", metadata={
        "description": "end: a local day (inclusive) or date-time (exclusive); default today"})
    tz = fields.String(load_default="UTC", validate=[validate.Length(max=64), _zone], metadata={
        "description": "IANA time zone of the buckets and dates", "example": "Europe/Paris"})


class KpiQueryArgsSchema(KpiRangeArgsSchema):
    interval = fields.String(load_default="hour", validate=validate.OneOf(INTERVALS), metadata={
        "description": "bucket: 15m (at most 31 days), hour (93), day (366), week (ISO, "
                       "Monday; 3 years), month (10 years)"})


class StaffingQueryArgsSchema(KpiRangeArgsSchema):
    service_level = fields.Float(load_default=0.8, validate=validate.Range(
        min=0.01, max=0.999), metadata={"description": "target share answered within threshold"})
    threshold = fields.Integer(validate=validate.Range(min=0, max=3600), metadata={
        "description": "seconds (default: the queue's service_level_seconds)"})
    interval = fields.String(load_default="15m", validate=validate.OneOf(
        list(PLANNING_INTERVALS)), metadata={"description": "planning interval length"})
    arrival_rate = fields.Float(validate=validate.Range(min=0, max=1_000_000), metadata={
        "description": "callers per planning interval (default: measured over from..to)"})
    aht = fields.Float(validate=validate.Range(min=1, max=86400), metadata={
        "description": "average handling time, seconds (default: measured over from..to)"})
    max_occupancy = fields.Float(validate=validate.Range(min=0.1, max=1.0), metadata={
        "description": "also keep occupancy at or below this share"})


class HandlingSchema(Schema):
    answered = fields.Integer()
    answered_in_sl = fields.Integer(metadata={"description": "answered within the threshold"})
    asa = fields.Float(allow_none=True, metadata={"description": "average speed of answer, s"})
    asa_p90 = fields.Integer(allow_none=True, metadata={"description": "90th percentile, s"})
    handled = fields.Integer(metadata={"description": "answered calls that have ended"})
    aht = fields.Float(allow_none=True, metadata={
        "description": "(talk + hold + wrap-up) / handled, seconds"})
    talk_avg = fields.Float(allow_none=True)
    hold_avg = fields.Float(allow_none=True)
    wrapup_avg = fields.Float(allow_none=True)
    transfers = fields.Integer()


class QueueKpiFiguresSchema(HandlingSchema):
    offered = fields.Integer()
    abandoned = fields.Integer(metadata={"description": "includes short_abandoned"})
    short_abandoned = fields.Integer(metadata={"description": "abandoned within 5 s"})
    overflowed = fields.Integer()
    timed_out = fields.Integer()
    closed = fields.Integer(metadata={"description": "arrived while closed (not offered)"})
    service_level = fields.Float(allow_none=True, metadata={
        "description": "answered_in_sl / (offered - short_abandoned)"})
    abandon_rate = fields.Float(allow_none=True)
    wait_avg = fields.Float(allow_none=True)
    wait_max = fields.Integer(allow_none=True)


class AgentFiguresSchema(HandlingSchema):
    offers = fields.Integer(metadata={"description": "times the phone rang for a queue call"})
    occupancy = fields.Float(allow_none=True, metadata={
        "description": "(on-call + wrap-up) / (logged-in - paused)"})
    logged_in_seconds = fields.Integer()
    paused_seconds = fields.Integer()
    available_seconds = fields.Integer()
    ringing_seconds = fields.Integer()
    on_call_seconds = fields.Integer()
    wrap_up_seconds = fields.Integer()


class BoundsSchema(Schema):
    start = fields.String(metadata={"description": "local start, ISO-8601 with offset"})
    end = fields.String()


class QueueBucketSchema(BoundsSchema, QueueKpiFiguresSchema):
    pass


class AgentBucketSchema(BoundsSchema, AgentFiguresSchema):
    pass


class StatisticsHeadSchema(BoundsSchema):
    interval = fields.String()
    tz = fields.String()


class QueueStatisticsSchema(StatisticsHeadSchema):
    queue_id = fields.String()
    service_level_seconds = fields.Integer(allow_none=True)
    totals = fields.Nested(QueueKpiFiguresSchema)
    series = fields.List(fields.Nested(QueueBucketSchema))


class AgentStatisticsSchema(StatisticsHeadSchema):
    agent_id = fields.String()
    totals = fields.Nested(AgentFiguresSchema)
    series = fields.List(fields.Nested(AgentBucketSchema))


class PredictionSchema(Schema):
    agents = fields.Integer()
    probability_of_waiting = fields.Float()
    service_level = fields.Float()
    asa_seconds = fields.Float(allow_none=True)
    occupancy = fields.Float(allow_none=True)


class StaffingSchema(Schema):
    queue_id = fields.String()
    interval = fields.String()
    interval_seconds = fields.Integer()
    target_service_level = fields.Float()
    threshold = fields.Integer()
    max_occupancy = fields.Float()
    basis = fields.Dict(metadata={"description": "measured range and what was given"})
    arrival_rate = fields.Float(metadata={"description": "callers per interval"})
    aht = fields.Float()
    traffic_erlangs = fields.Float()
    agents_needed = fields.Integer()
    predicted = fields.Nested(PredictionSchema, allow_none=True)
    around = fields.List(fields.Nested(PredictionSchema))
