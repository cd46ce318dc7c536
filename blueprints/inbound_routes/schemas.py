"""Request and query schemas of the inbound routes resource (responses: the wire schema)."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.fields import IDENT, FullMatch
from services.queues.routes import NUMBER_HELP, NUMBER_PATTERN
from services.queues.schemas import InboundRouteSchema, qm  # noqa: F401

NUMBER = FullMatch(NUMBER_PATTERN, error=f"must be {NUMBER_HELP}")
TARGET_HELP = "queue id (queue), agent id (agent) or number (number)"


def check_target(target_type, target):
    """The target's form for its type (that it exists is the service's check)."""
    if target_type == qm.TARGET_NUMBER:
        FullMatch(NUMBER_PATTERN, error=f"a number target is {NUMBER_HELP}")(target)
    elif target_type is not None:
        IDENT(target)


class InboundRouteFieldsSchema(Schema):
    match = fields.String(validate=validate.OneOf(qm.MATCHES),
                          metadata={"description": "exact: the whole number; prefix: numbers "
                                                   "that start with it (longest prefix wins)"})
    number = fields.String(validate=NUMBER, metadata={"example": "+33123456789"})
    target_type = fields.String(validate=validate.OneOf(qm.TARGET_TYPES))
    target = fields.String(validate=validate.Length(min=1, max=64),
                           metadata={"description": TARGET_HELP, "example": "support"})
    name = fields.String(allow_none=True, validate=validate.Length(max=128))

    @validates_schema
    def _target_fits(self, data, **kwargs):
        if "target" in data:
            try:
                check_target(data.get("target_type"), data["target"])
            except ValidationError as exc:
                raise ValidationError(exc.messages, "target") from None


class InboundRouteCreateSchema(InboundRouteFieldsSchema):
    match = fields.String(load_default=qm.MATCH_EXACT, validate=validate.OneOf(qm.MATCHES))
    number = fields.String(required=True, validate=NUMBER, metadata={"example": "+33123456789"})
    target_type = fields.String(required=True, validate=validate.OneOf(qm.TARGET_TYPES))
    target = fields.String(required=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": TARGET_HELP, "example": "support"})


class InboundRouteUpdateSchema(InboundRouteFieldsSchema):
    """What is left out stays as it is (target and target_type are checked together)."""


class InboundRouteQueryArgsSchema(Schema):
    match = fields.String(validate=validate.OneOf(qm.MATCHES))
    target_type = fields.String(validate=validate.OneOf(qm.TARGET_TYPES))
    target = fields.String(validate=validate.Length(min=1, max=64))
