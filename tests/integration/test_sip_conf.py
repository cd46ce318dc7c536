"""The FreeSWITCH configuration in freeswitch/conf: well-formed, saying what the service needs."""
import os
import re
import xml.etree.ElementTree as ET

from freeswitch.esl.gateway_xml import GATEWAY_NAME
from tests.conftest import ROOT

CONF = os.path.join(ROOT, "freeswitch",
                    "conf")


def parse(relative):
    with open(os.path.join(CONF, relative), encoding="utf-8") as fh:
        return ET.fromstring(fh.read())


def params(element):
    return {p.get("name"): p.get("value") for p in element.iter("param")}


def test_event_socket_listens_on_loopback_8021_with_a_password_to_set():
    settings = params(parse("autoload_configs/event_socket.conf.xml"))
    assert (settings["listen-ip"], settings["listen-port"]) == ("127.0.0.1", "8021")
    assert settings["password"] and settings["password"] != "ClueCon"
    assert settings["apply-inbound-acl"] == "loopback.auto"


def test_external_profile_includes_the_service_gateway_directory():
    profile = parse("sip_profiles/external.xml")
    assert profile.get("name") == "external"
    includes = [e.get("data") for e in profile.find("gateways")
                if e.tag == "X-PRE-PROCESS" and e.get("cmd") == "include"]
    assert "external/cc-gateways/*.xml" in includes
    assert params(profile)["context"] == "public"
    assert os.path.isdir(os.path.join(CONF, "sip_profiles", "external", "cc-gateways"))


def test_placeholder_in_the_gateway_directory_can_never_be_a_gateway_name():
    placeholder = "sip_profiles/external/cc-gateways/_placeholder.xml"
    assert parse(placeholder).tag == "include" and not parse(placeholder).findall("gateway")
    assert not GATEWAY_NAME.match("_placeholder")


def test_dialplan_parks_inbound_carrier_calls_and_cc_park():
    inbound = parse("dialplan/public/00_callcenter_inbound.xml")
    actions = [a.get("application") for a in inbound.iter("action")]
    assert actions[-2:] == ["answer", "park"]
    expression = inbound.find(".//condition").get("expression")
    assert re.match(expression, "+15551230000") and not re.match(expression, "evil;x")
    park = parse("dialplan/default/00_callcenter_park.xml")
    assert park.find(".//condition").get("expression") == "^cc_park$"
    assert [a.get("application") for a in park.iter("action")] == ["park"]


def test_generated_gateway_files_are_never_committed():
    for directory in ("gateways", "sip_profiles/external/cc-gateways"):
        with open(os.path.join(CONF, directory, ".gitignore")) as fh:
            lines = fh.read().split("\n")
        assert "*" in lines
