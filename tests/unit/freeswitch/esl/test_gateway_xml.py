"""Gateway files: presets render XML FreeSWITCH reads; hostile input alters neither it nor its path.

Pure functions and the real file system (tmp_path); no processes.
"""
import os
import stat
import xml.etree.ElementTree as ET

import pytest

from freeswitch.esl.gateway_xml import (
    GatewaySpec,
    InvalidGatewayValue,
    OutsideGatewayDir,
    gateway_file_path,
    parse_gateway_xml,
    remove_gateway_file,
    render_gateway_xml,
    write_gateway_file,
)
from freeswitch.esl.sofia_gateways import parse_gateway_status
from services.sip.presets import PROVIDER_PRESETS
from tests.esl_sim.transcripts import load_raw, parse_message, server_messages

# Parameters mod_sofia reads from a <gateway> (sofia.c parse_gateways); anything
# else in a rendered file would be a typo FreeSWITCH silently ignores.
KNOWN_SOFIA_PARAMS = {
    "realm", "proxy", "outbound-proxy", "register-proxy", "username", "auth-username",
    "password", "from-user", "from-domain", "extension", "register", "register-transport",
    "expire-seconds", "retry-seconds", "caller-id-in-from", "context", "ping", "scheme",
}


def preset_spec(provider_id, **overrides):
    preset = PROVIDER_PRESETS[provider_id]
    transport = overrides.pop("transport", preset["transport"])
    values = {"name": f"{provider_id}-gw", "host": preset["example_host"],
              "port": preset["ports"].get(transport, 5060), "transport": transport,
              "username": "15551230000", "password": "s3cret-Pass",
              "register": preset["register"], "caller_id": "+15551230000",
              "caller_id_in_from": preset["caller_id_in_from"], "codecs": preset["codecs"],
              "expiry": preset["expiry"], "outbound_proxy": preset.get("example_outbound_proxy")}
    if "auth_username" in preset["requires"]:
        values["auth_username"] = "801234567"
    values.update(overrides)
    return GatewaySpec(**values)


@pytest.mark.parametrize("provider_id", sorted(PROVIDER_PRESETS))
def test_each_preset_renders_gateway_xml_freeswitch_reads(provider_id):
    preset = PROVIDER_PRESETS[provider_id]
    text = render_gateway_xml(preset_spec(provider_id))
    name, params, variables = parse_gateway_xml(text)

    assert name == f"{provider_id}-gw"
    assert set(params) <= KNOWN_SOFIA_PARAMS
    port = preset["ports"][preset["transport"]]
    assert params["realm"] == f"{preset['example_host']}:{port}"
    assert params["proxy"] == preset.get("example_outbound_proxy", params["realm"])
    assert params["register-transport"] == preset["transport"]
    assert params["register"] == ("true" if preset["register"] else "false")
    assert params["username"] == "15551230000"
    assert params["password"] == "s3cret-Pass"
    assert params["expire-seconds"] == str(preset["expiry"])
    assert params["caller-id-in-from"] == ("true" if preset["caller_id_in_from"] else "false")
    assert params["context"] == "public"
    if not preset["register"]:
        assert int(params["ping"]) > 0  # without REGISTER, OPTIONS pings tell UP/DOWN
    if "auth_username" in preset["requires"]:
        assert params["auth-username"] == "801234567"
    assert ("absolute_codec_string", ",".join(preset["codecs"]), "outbound") in variables
    assert ("effective_caller_id_number", "+15551230000", "outbound") in variables


@pytest.mark.parametrize("provider_id", sorted(PROVIDER_PRESETS))
def test_every_transport_of_a_preset_goes_into_register_transport(provider_id):
    for transport in PROVIDER_PRESETS[provider_id]["transports"]:
        _, params, _ = parse_gateway_xml(render_gateway_xml(
            preset_spec(provider_id, transport=transport)))
        assert params["register-transport"] == transport
        assert params["realm"].endswith(f":{PROVIDER_PRESETS[provider_id]['ports'][transport]}")


def test_rendered_file_is_what_the_simulator_and_freeswitch_include_read():
    from tests.esl_sim.server import Gateway
    text = render_gateway_xml(preset_spec("asterisk"))
    root = ET.fromstring(text)
    assert root.tag == "include"  # spliced into the profile by X-PRE-PROCESS include
    assert "<?xml" not in text  # a declaration inside an included file breaks FreeSWITCH
    gw = root.find("gateway")
    gateway = Gateway.from_params(gw.get("name"),
                                  {p.get("name"): p.get("value") for p in gw.iter("param")})
    assert gateway.realm == "pbx.example.com:5060"
    assert gateway.proxy == "sip:pbx.example.com:5060"
    assert gateway.username == "15551230000" and gateway.password is True
    assert gateway.register is True


def test_ipv6_hosts_are_bracketed_in_realm_and_proxy():
    _, params, _ = parse_gateway_xml(render_gateway_xml(
        preset_spec("asterisk", host="2001:db8::5", outbound_proxy=None)))
    assert params["realm"] == "[2001:db8::5]:5060"
    assert params["proxy"] == "[2001:db8::5]:5060"


HOSTILE_PASSWORDS = [
    '"/><param name="register" value="false"/><param name="x" value="',
    "<![CDATA[</gateway>]]>",
    "a'b\"c<d>e&f;g</param>",
    "<!-- -->&amp;&#10;",
    "../../etc/passwd",
    "pässwörd-ünïcode-€",
]


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_hostile_password_is_escaped_and_round_trips_exactly(password):
    text = render_gateway_xml(preset_spec("custom", password=password))
    name, params, _ = parse_gateway_xml(text)
    assert params["password"] == password
    assert name == "custom-gw"
    assert params["register"] == "true"  # not overridden by the injected attribute
    assert list(params).count("password") == 1
    assert len(ET.fromstring(text).findall(".//param")) == len(params)
    assert text.isascii()  # non-ASCII as character references: no encoding guesswork


@pytest.mark.parametrize("field, value", [
    ("password", "line1\nline2"), ("password", "nul\x00byte"), ("password", "tab\there"),
    ("password", "$${switch_serial}"), ("password", "${sip_from_user}"),
    ("name", "../etc"), ("name", "a/b"), ("name", "gw.xml"), ("name", "gw\n"),
    ("name", 'a"b'), ("name", "<gw>"), ("name", ""), ("name", "-lead"), ("name", "x" * 64),
    ("host", "evil.com\"/><param"), ("host", "host name"), ("host", "sip:host"),
    ("host", "host:5060"), ("host", "a..b"), ("host", "-bad.example.com"), ("host", "[::1]"),
    ("port", 0), ("port", 70000), ("transport", "sctp"), ("username", 'bob"'),
    ("username", "bob<x>"), ("caller_id", "+1555 123"), ("codecs", ["PCMU", "EVIL"]),
    ("codecs", ["pcmu"]),
    ("outbound_proxy", "proxy.example.com:99999"), ("outbound_proxy", "p.example.com;lr"),
    ("expiry", 5),
])
def test_hostile_or_malformed_values_are_refused(field, value):
    with pytest.raises(InvalidGatewayValue) as caught:
        render_gateway_xml(preset_spec("custom", **{field: value}))
    assert caught.value.field_name == field


def test_file_paths_stay_inside_the_gateway_directory(tmp_path):
    directory = tmp_path / "gateways"
    directory.mkdir()
    assert gateway_file_path(str(directory), "carrier-1") == str(directory / "carrier-1.xml")
    for name in ("../escape", "..", "a/../../b", "/etc/passwd", "x\x00y", "sub/dir"):
        with pytest.raises(InvalidGatewayValue):
            gateway_file_path(str(directory), name)
    outside = tmp_path / "outside.xml"
    outside.write_text("<include/>")
    os.symlink(outside, directory / "linked.xml")
    with pytest.raises(OutsideGatewayDir):
        write_gateway_file(str(directory), "linked", "<include/>")
    assert outside.read_text() == "<include/>"  # the file the link points to is untouched


def test_gateway_file_is_written_atomically_with_mode_0600(tmp_path):
    directory = str(tmp_path / "gateways")  # created on first write
    text = render_gateway_xml(preset_spec("twilio"))
    path = write_gateway_file(directory, "twilio-gw", text)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds the password in clear
    with open(path) as fh:
        assert fh.read() == text
    write_gateway_file(directory, "twilio-gw", text.replace("s3cret-Pass", "n3w-Pass"))
    with open(path) as fh:
        assert "n3w-Pass" in fh.read()
    assert os.listdir(directory) == ["twilio-gw.xml"]  # no temporary file left behind
    assert remove_gateway_file(directory, "twilio-gw") is True
    assert remove_gateway_file(directory, "twilio-gw") is False
    assert os.listdir(directory) == []


def api_body(transcript):
    """The body of the one api/response of a captured transcript."""
    for raw in server_messages(load_raw(transcript)):
        message = parse_message(raw)
        if message.content_type == "api/response":
            return message.body.decode("utf-8")
    raise AssertionError(f"no api/response in {transcript}")


def test_freeswitch_xmlstatus_replies_are_read_as_captured():
    fields = parse_gateway_status(api_body("02_api_sofia_xmlstatus_gateway_reg_fail_gw"))
    assert fields["name"] == "reg_fail_gw"
    assert (fields["state"], fields["status"], fields["retry"]) == ("FAIL_WAIT", "DOWN", "4s")
    assert fields["from"] == "<sip:reg_fail_user@127.0.0.1:5099>"
    uas = parse_gateway_status(api_body("02_api_sofia_xmlstatus_gateway_uas_gw"))
    assert (uas["state"], uas["status"], uas["pingtime"]) == ("NOREG", "UP", "2.23")
    assert parse_gateway_status(api_body("02_api_sofia_xmlstatus_gateway_unknown")) is None
