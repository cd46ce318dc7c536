"""Request schemas of the queues resource (the response schema is the wire schema).

Each value's form is checked here (422 validation_failed, naming the field); what needs
the database (members and action targets exist) is checked by the service.
"""
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from services.fields import IDENT, FullMatch
from services.queues import hours as qh
from services.queues.routes import NUMBER_HELP, NUMBER_PATTERN
from services.queues.schemas import ACTION_HELP, QueueSchema, qm  # noqa: F401

SKILL = FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$", error="skill names are 1-64 letters, digits, _ . -")
MAX_MEMBERS = 1000


def _int(low, high, **kwargs):
    return fields.Integer(strict=True, validate=validate.Range(min=low, max=high), **kwargs)


class ActionInSchema(Schema):
    """What to do with a caller: overflow to a queue, an agent or a number, or hang up."""

    action = fields.String(required=True, validate=validate.OneOf(qm.ACTIONS))
    target = fields.String(allow_none=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "queue id, agent id or number; "
                                                    "none for hangup"})

    @validates_schema
    def _target_fits(self, data, **kwargs):
        action, target = data.get("action"), data.get("target")
        if action == qm.ACTION_HANGUP:
            if target is not None:
                raise ValidationError("hangup takes no target", "target")
            return
        if target is None:
            raise ValidationError(f"{action} needs a target", "target")
        if action == qm.ACTION_NUMBER:
            FullMatch(NUMBER_PATTERN, error=f"a number is {NUMBER_HELP}")(target)
        else:
            IDENT(target)

    @post_load
    def _always_a_target(self, data, **kwargs):
        return {"action": data["action"], "target": data.get("target")}


_RANGES = {"type": "array", "maxItems": qh.MAX_RANGES_PER_DAY,
           "items": {"type": "array", "minItems": 2, "maxItems": 2,
                     "items": {"type": "string", "pattern": qh.TIME_PATTERN}}}


class HoursField(fields.Field):
    """Business hours: {"timezone", "days": {"mon": [["09:00", "17:30"]]}, "closed_dates"}."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {
            "type": "object", "description": "timezone (IANA), days (mon..sun -> list of "
            "[\"HH:MM\", \"HH:MM\"], start before end, a missing day is closed) and "
            "closed_dates (YYYY-MM-DD); null: always open",
            "example": {"timezone": "Europe/Paris", "days": {"mon": [["09:00", "17:30"]]},
                        "closed_dates": ["2026-12-25"]},
            "properties": {
                "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
                "days": {"type": "object", "properties": {day: _RANGES for day in qh.DAYS},
                         "additionalProperties": False},
                "closed_dates": {"type": "array", "items": {"type": "string",
                                                            "pattern": qh.DATE_PATTERN}}},
            "required": ["timezone"], "additionalProperties": False})
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return qh.check_hours(value)
        except qh.HoursError as exc:
            raise ValidationError(str(exc)) from None


def _action(**kwargs):
    return fields.Nested(ActionInSchema, allow_none=True, **kwargs)


class QueueMemberInSchema(Schema):
    agent_id = fields.String(required=True, validate=IDENT)
    tier = _int(1, 100, load_default=1,
                metadata={"description": "1 is offered first; higher tiers only when no "
                                         "lower-tier member is available"})


class QueueFieldsSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=128))
    strategy = fields.String(validate=validate.OneOf(qm.STRATEGIES))
    required_skills = fields.Dict(
        keys=fields.String(validate=SKILL), values=_int(1, 10), allow_none=True,
        validate=validate.Length(max=100), metadata={"example": {"billing": 5},
                                                     "description": "minimum skill levels"})
    ring_timeout = _int(5, 120, metadata={"description": "seconds an agent's phone rings"})
    max_wait_seconds = _int(10, 86400, allow_none=True,
                            metadata={"description": "null: wait forever"})
    max_wait_action = _action(metadata={"description": f"at max_wait_seconds: {ACTION_HELP}; "
                                                       "null: hang up after a tone"})
    no_agents_action = _action(metadata={"description": "when no member is logged in; null: "
                                                        "keep waiting"})
    hours = HoursField()
    closed_action = _action(metadata={"description": "outside hours; null: hang up after a "
                                                     "tone"})
    service_level_seconds = _int(1, 3600)
    wrapup_seconds = _int(0, 3600, allow_none=True,
                          metadata={"description": "overrides the agent's; null: the agent's"})
    max_missed_offers = _int(1, 20, metadata={"description": "offers an agent may miss in a "
                                                             "row before paused (no-answer)"})
    members = fields.List(fields.Nested(QueueMemberInSchema),
                          validate=validate.Length(max=MAX_MEMBERS),
                          metadata={"description": "the whole list (replaces the old one)"})

    @validates_schema
    def _members_once(self, data, **kwargs):
        seen = set()
        for member in data.get("members") or ():
            if member["agent_id"] in seen:
                raise ValidationError(f"agent {member['agent_id']} is listed twice", "members")
            seen.add(member["agent_id"])


class QueueCreateSchema(QueueFieldsSchema):
    id = fields.String(required=True, validate=IDENT, metadata={"example": "support"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=128))
    strategy = fields.String(load_default=qm.LONGEST_IDLE, validate=validate.OneOf(qm.STRATEGIES))


class QueueUpdateSchema(QueueFieldsSchema):
    """What is left out stays as it is."""
