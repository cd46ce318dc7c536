"""Response schemas of the browser phone routes (they take no input but the agent id)."""
from marshmallow import Schema, fields

from services.fields import UTCDateTime


class IceServerSchema(Schema):
    urls = fields.String(metadata={"example": "stun:stun.example.com:3478"})


class PhoneConfigSchema(Schema):
    agent_id = fields.String()
    ws_url = fields.String(metadata={"description": "the SIP-over-WebSocket URL (wss:// in "
                                                    "production)",
                                     "example": "wss://pbx.example.com:7443"})
    sip_uri = fields.String(metadata={"example": "sip:1005@pbx.example.com"})
    username = fields.String(metadata={"description": "the agent's directory user"})
    password = fields.String(metadata={"description": "the phone's SIP password: for the "
                                                      "agent's own page only, never stored"})
    display_name = fields.String()
    ice_servers = fields.List(fields.Nested(IceServerSchema))
    register_expires = fields.Integer(metadata={"description": "seconds a REGISTER lasts"})
    rotated_at = UTCDateTime()


class PhoneCredentialsSchema(Schema):
    agent_id = fields.String()
    username = fields.String()
    password = fields.String(metadata={"description": "shown once, in this answer"})
    rotated_at = UTCDateTime()
