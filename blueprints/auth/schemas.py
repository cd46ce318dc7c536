"""Auth schemas."""
from marshmallow import Schema, fields

from services.fields import UTCDateTime


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "Send as Authorization: Bearer <token>, "
                                                   "or ?token= / first message on /ws"})
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "seconds"})
    expires_at = UTCDateTime(metadata={"description": "when the token expires; renew it "
                                                      "before with POST /api/auth/token/refresh"})
    role = fields.String()
    agent_id = fields.String(allow_none=True)


class PrincipalSchema(Schema):
    name = fields.String(metadata={"description": "the API key's name"})
    role = fields.String(metadata={"description": "agent | supervisor | admin"})
    agent_id = fields.String(allow_none=True)
    via = fields.String(metadata={"description": "key | token"})
