"""The FreeSWITCH configuration in freeswitch/conf: well-formed, saying what the service needs."""
import os
import re
import xml.etree.ElementTree as ET

from freeswitch.esl.gateway_xml import GATEWAY_NAME
from tests.conftest import ROOT

CONF = os.path.join(ROOT, "freeswitch", "conf")
SCRIPT = os.path.join(ROOT, "scripts", "install_freeswitch_conf.sh")


def parse(relative):
    with open(os.path.join(CONF, relative), encoding="utf-8") as fh:
        return ET.fromstring(fh.read())


def read_guide():
    with open(os.path.join(CONF, "README.md"), encoding="utf-8") as fh:
        return fh.read()


def script_text():
    with open(SCRIPT, encoding="utf-8") as fh:
        return fh.read()


def params(element):
    return {p.get("name"): p.get("value") for p in element.iter("param")}


def test_event_socket_listens_on_loopback_8021_with_a_password_to_set():
    settings = params(parse("autoload_configs/event_socket.conf.xml"))
    assert (settings["listen-ip"], settings["listen-port"]) == ("127.0.0.1", "8021")
    assert settings["password"] and settings["password"] != "ClueCon"
    assert settings["apply-inbound-acl"] == "loopback.auto"


def test_no_replacement_external_profile_is_shipped_only_the_gateway_directory():
    """Replacing the operator's external.xml drops ext-rtp-ip/ext-sip-ip, tls-ciphers..."""
    assert not os.path.exists(os.path.join(CONF, "sip_profiles", "external.xml"))
    assert os.path.isdir(os.path.join(CONF, "sip_profiles", "external", "cc-gateways"))
    guide = read_guide()
    for dropped in ("ext-rtp-ip", "ext-sip-ip", "tls-ciphers", "enable-100rel", "one-way"):
        assert dropped in guide


def test_placeholder_in_the_gateway_directory_can_never_be_a_gateway_name():
    placeholder = "sip_profiles/external/cc-gateways/_placeholder.xml"
    assert parse(placeholder).tag == "include" and not parse(placeholder).findall("gateway")
    assert not GATEWAY_NAME.match("_placeholder")


def test_dialplan_parks_inbound_carrier_calls_and_cc_park():
    inbound = parse("dialplan/callcenter/inbound.xml")
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


def test_no_inbound_file_where_the_stock_public_context_reaches_it_too_late():
    """Stock public.xml sends 10[01][0-9] to default before including public/*.xml."""
    assert not os.path.exists(os.path.join(CONF, "dialplan", "public"))
    assert "^(10[01][0-9])$" in read_guide()


def test_the_guide_shows_the_lines_the_script_adds():
    script, guide = script_text(), read_guide()
    for variable in ("GATEWAY_INCLUDE", "INBOUND_INCLUDE"):
        line = re.search(rf"^{variable}='(.*)'$", script, re.M).group(1)
        assert line in guide
    assert "scripts/install_freeswitch_conf.sh --conf-dir" in guide
    assert 'install -d -o "$FS_USER" -g "$FS_GROUP" -m 0750' in script
    assert "install -d -o freeswitch -g freeswitch -m 0750" in guide
    assert "reload mod_event_socket" in script and "reload mod_event_socket" in guide
    assert "sofia profile external restart" in script and "sofia profile external restart" in guide


def test_the_guide_names_source_build_directories_and_the_freeswitch_user():
    guide = read_guide()
    assert "P/etc/freeswitch" in guide and "P/bin/fs_cli" in guide
    assert "useradd" in guide and "freeswitch -u freeswitch -g freeswitch" in guide
    assert "--owner root:root" in guide


def test_every_fs_cli_command_of_the_guide_passes_the_password():
    """After step 1 a bare `fs_cli -x` answers `Error Connecting`."""
    guide = read_guide()
    assert not re.findall(r"fs_cli -x (?!\.\.\.)", guide)
    assert "~/.fs_cli_conf" in guide
