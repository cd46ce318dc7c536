"""GET /api/asyncapi.json: the live feed as AsyncAPI 3.0, built from the OpenAPI document's
components (the same marshmallow wire schemas) and blueprints/asyncapi/messages.py."""
from flask import Blueprint, current_app, jsonify, request

from blueprints.asyncapi.messages import CHANNEL_MESSAGES

blp = Blueprint("asyncapi", __name__, url_prefix="/api")

OPENAPI_FORMAT = "application/vnd.oai.openapi+json;version=3.0.0"
ENVELOPE = {
    "type": "object", "required": ["id", "channel", "type", "ts", "data"],
    "properties": {
        "id": {"type": "integer", "description": "the channel's sequence number (for `since`)"},
        "channel": {"type": "string"}, "type": {"type": "string"},
        "ts": {"type": "string", "format": "date-time"}, "data": {}}}


def _message(channel, event_type, schema, summary):
    data = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"name": event_type, "title": event_type, "summary": summary,
            "contentType": "application/json",
            "payload": {"schemaFormat": OPENAPI_FORMAT, "schema": {"allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"type": "object", "properties": {
                    "channel": {"type": "string", "enum": [channel]},
                    "type": {"type": "string", "enum": [event_type]}, "data": data}}]}}}


def build_document(openapi, host):
    """The AsyncAPI 3.0 document: one channel per live channel, one receive operation each."""
    messages, channels, operations = {}, {}, {}
    for channel, groups in CHANNEL_MESSAGES.items():
        names = []
        for types, schema, summary in groups:
            for event_type in types:
                messages[event_type] = _message(channel, event_type, schema, summary)
                names.append(event_type)
        channels[channel] = {
            "address": channel,
            "description": f"`{channel}` messages: subscribe with "
                           f'{{"type": "subscribe", "channels": ["{channel}"]}} on /ws',
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names}}
        operations["receive" + channel.capitalize()] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names]}
    schemas = dict(openapi.get("components", {}).get("schemas", {}), Envelope=ENVELOPE)
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Call Center live feed", "version": openapi["info"]["version"],
                 "description": "One WebSocket (/ws) carries every channel; protocol, resume "
                                "and limits: docs/websocket.md. Each message is an envelope "
                                "(id, channel, type, ts) around `data`, the REST schema."},
        "servers": {"live": {"host": host, "protocol": "ws", "pathname": "/ws",
                             "description": "wss behind TLS; authenticate with ?api_key=, "
                                            "?token= or a first `auth` message"}},
        "defaultContentType": "application/json",
        "channels": channels, "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


@blp.route("/asyncapi.json")
def asyncapi_json():
    cache = current_app.extensions.setdefault("asyncapi", {})
    if request.host not in cache:  # the spec does not change while the app runs
        api = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
        cache[request.host] = build_document(api.spec.to_dict(), request.host)
    return jsonify(cache[request.host])
