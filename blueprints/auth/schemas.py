"""Auth schemas."""
from marshmallow import Schema, fields


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "Send as Authorization: Bearer <token>, "
                                                   "or ?token= / first message on /ws"})
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "seconds"})
    role = fields.String()
    agent_id = fields.String(allow_none=True)


class PrincipalSchema(Schema):
    name = fields.String(metadata={"description": "the API key's name"})
    role = fields.String(metadata={"description": "agent | supervisor | admin"})
    agent_id = fields.String(allow_none=True)
    via = fields.String(metadata={"description": "key | token"})
