"""SIP provider presets: the defaults and the advice GET /api/sip/providers shows for each one."""
from freeswitch.esl.gateway_xml import DEFAULT_PORTS

CUSTOM = "custom"

PROVIDER_PRESETS = {
    "twilio": {
        "name": "Twilio Elastic SIP Trunking",
        "host_pattern": "{trunk-name}.pstn.twilio.com",
        "example_host": "example.pstn.twilio.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061},
        "register": False, "codecs": ["PCMU", "PCMA"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host", "caller_id"],
        "note": "Host: the trunk's Termination SIP URI ({trunk-name}.pstn.twilio.com, or a "
                "regional one such as {trunk-name}.pstn.ireland.twilio.com). Twilio does not "
                "accept REGISTER: leave register off and either add this server's public IP to "
                "the trunk's IP Access Control List, or give the username/password of a "
                "Credential List attached to the trunk. Caller id: a Twilio number or verified "
                "caller id in E.164 (+15551230000). TLS (port 5061) needs Secure Trunking.",
    },
    "ringcentral": {
        "name": "RingCentral",
        "host_pattern": "sip.ringcentral.com",
        "example_host": "sip.ringcentral.com",
        "outbound_proxy_pattern": "sip{NN}.ringcentral.com:5090",
        "example_outbound_proxy": "sip20.ringcentral.com:5090",
        "transport": "udp", "transports": ["udp", "tcp"],
        "ports": {"udp": 5060, "tcp": 5060},
        "register": True, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 600,
        "caller_id_in_from": False,
        "requires": ["username", "auth_username", "password", "outbound_proxy"],
        "note": "From the RingCentral admin portal, device 'Existing Phone' / 'Other phone' "
                "SIP settings: User Name -> username (the phone number), Authorization ID -> "
                "auth_username, Password -> password, Outbound Proxy (e.g. "
                "sip20.ringcentral.com:5090, depends on your region) -> outbound_proxy. "
                "The caller id is set in RingCentral, not here.",
    },
    "vonage": {
        "name": "Vonage (Nexmo) SIP Trunking",
        "host_pattern": "sip.nexmo.com",
        "example_host": "sip.nexmo.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061},
        "register": False, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["username", "password", "caller_id"],
        "note": "Outbound calls authenticate with digest auth: username = your Vonage API "
                "key, password = your API secret. Host sip.nexmo.com (or a regional host "
                "such as sip-us.nexmo.com). Caller id: a Vonage number of your account in "
                "E.164. Vonage trunks do not use REGISTER.",
    },
    "asterisk": {
        "name": "Asterisk",
        "host_pattern": "{asterisk-host}",
        "example_host": "pbx.example.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls", "ws", "wss"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 8088, "wss": 8089},
        "ws_path": "/ws",
        "register": True, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host", "username", "password"],
        "note": "Create a PJSIP endpoint for this server on the Asterisk box (an auth section "
                "with username/password and an aor with max_contacts >= 1) and give that "
                "username and password here; host is the Asterisk server's name or IP. "
                "WebSocket transports use Asterisk's HTTP server (8088 ws / 8089 wss, path /ws).",
    },
    "freepbx": {
        "name": "FreePBX",
        "host_pattern": "{freepbx-host}",
        "example_host": "freepbx.example.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls", "ws", "wss"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 8088, "wss": 8089},
        "ws_path": "/ws",
        "register": True, "codecs": ["PCMU", "PCMA", "G722"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host", "username", "password"],
        "note": "In FreePBX add a PJSIP extension (or a trunk with registration 'Receive') for "
                "this server: username = the extension number, password = its secret. PJSIP "
                "listens on 5060; if chan_sip is also enabled it usually takes 5160 instead.",
    },
    CUSTOM: {
        "name": "Other SIP provider or PBX",
        "host_pattern": "{sip-host}",
        "example_host": "sip.example.com",
        "transport": "udp", "transports": ["udp", "tcp", "tls", "ws", "wss"],
        "ports": dict(DEFAULT_PORTS),
        "register": True, "codecs": ["PCMU", "PCMA"], "expiry": 3600,
        "caller_id_in_from": True, "requires": ["host"],
        "note": "Any SIP registrar or trunk: host (realm), transport and port, and the "
                "credentials it gave you.",
    },
}


def preset_of(provider):
    """The preset of a provider id; the custom one for None or an unknown id."""
    return PROVIDER_PRESETS.get(provider or CUSTOM, PROVIDER_PRESETS[CUSTOM])


def provider_list():
    """The presets as GET /api/sip/providers shows them."""
    out = []
    for key, preset in PROVIDER_PRESETS.items():
        transport = preset["transport"]
        out.append({"id": key, **preset, "port": preset["ports"][transport]})
    return out
