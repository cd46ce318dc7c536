"""The /ws WebSocket: parse each client message, make one hub call, answer on the socket.

The protocol (messages both ways, channels, close codes) is in docs/websocket.md;
the fan-out, resume and heartbeat live in services/live/ (hub.py, client.py, history.py).
"""
import http
import json

from flask import current_app, jsonify
from marshmallow import ValidationError
from simple_websocket import ConnectionError as HandshakeError
from wsproto.utilities import RemoteProtocolError

from blueprints.access.websocket import authenticate_ws_connection
from blueprints.ws.schemas import (
    CLIENT_MESSAGE_TYPES,
    ChannelsMessageSchema,
    ClientMessageSchema,
)
from services.live.hub import release_database_connection
from services.publisher import CHANNELS

_message_schema = ClientMessageSchema()
_channels_schema = ChannelsMessageSchema()


class ProtocolError(Exception):
    """A client message the server cannot act on; answered with an error, the socket stays open."""

    def __init__(self, code, message, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def register(app, sock):
    """Attach /ws to the app, with the maximum message size from WEBSOCKET_MAX_MESSAGE."""
    options = app.config.setdefault("SOCK_SERVER_OPTIONS", {})
    # simple-websocket refuses a larger message with close code 1009 before buffering it.
    options.setdefault("max_message_size", app.config.get("WEBSOCKET_MAX_MESSAGE", 64 * 1024))
    app.register_error_handler(HandshakeError, _bad_handshake)
    app.register_error_handler(RemoteProtocolError, _bad_handshake)

    @sock.route("/ws")
    def live_socket(ws):
        """Live channels: subscribe, resume with since, receive envelopes."""
        principal = authenticate_ws_connection(ws)
        # The connection lives for hours and never queries: return the database
        # connection that before_request opened instead of holding it.
        release_database_connection()
        if principal is None:
            return
        hub = current_app.extensions["services"].live_hub
        client = hub.connect(ws, principal=principal)
        try:
            while True:
                raw = ws.receive()
                if raw is not None:
                    answer(hub, client, raw)
        finally:
            hub.disconnect(client)


def _bad_handshake(exc):
    body = {"code": 400, "status": http.HTTPStatus(400).phrase,
            "message": f"not a valid WebSocket handshake: {exc}"}
    return jsonify(body), 400


def answer(hub, client, raw):
    """Handle one client message; a bad one gets an error message, never a closed socket."""
    ref = None
    try:
        message = parse(raw)
        ref = message.get("ref")
        ref = _load(_message_schema, message)["ref"]
        if message["type"] == "ping":
            hub.pong(client, ref)
            return
        request = _load(_channels_schema, message)
        channels = known_channels(request["channels"])
        if request["type"] == "subscribe":
            hub.subscribe(client, channels, request["since"], ref)
        else:
            hub.unsubscribe(client, channels, ref)
    except ProtocolError as exc:
        # Echo the ref only when it is one we would accept.
        ref = ref if isinstance(ref, (str, int)) and not isinstance(ref, bool) else None
        client.send_control("error", {"code": exc.code, "message": exc.message, **exc.details},
                            ref)


def parse(raw):
    if isinstance(raw, bytes):
        raise ProtocolError("invalid_message", "send JSON in text frames, not binary frames")
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError("invalid_json", f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("invalid_message", "a message is a JSON object with a 'type'")
    kind = message.get("type")
    if kind not in CLIENT_MESSAGE_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}",
                            known_types=list(CLIENT_MESSAGE_TYPES))
    return message


def known_channels(channels):
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ProtocolError("unknown_channel", f"unknown channel(s): {', '.join(unknown)}",
                            channels=unknown, known_channels=list(CHANNELS))
    return channels


# marshmallow's errors become protocol errors with the per-field messages.
def _load(schema, message):
    try:
        return schema.load(message)
    except ValidationError as exc:
        raise ProtocolError("invalid_message", "invalid message", errors=exc.messages) from None
