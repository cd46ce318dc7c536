"""The operator guide (freeswitch/conf/README.md) followed on a real FreeSWITCH: calls in and out.

Each test module run starts its own FreeSWITCH (../shared/freeswitch; skipped with the
reason when absent), gives it what a stock installation has where it matters (the
vanilla public context, whose own extensions come before its public/*.xml include),
installs freeswitch/conf/ with scripts/install_freeswitch_conf.sh as the guide says,
and places carrier calls in (DIDs inside and outside the stock ranges) and a call out
through a gateway file the service writes.
"""
import json
import os
import subprocess
import time

import pytest

from freeswitch.esl.gateway_xml import GatewaySpec, render_gateway_xml, write_gateway_file
from tests.conftest import ROOT
from tests.integration.conftest import start_real_freeswitch, stop_real_freeswitch

SCRIPT = os.path.join(ROOT, "scripts", "install_freeswitch_conf.sh")
INBOUND_FILE = os.path.join(ROOT, "freeswitch", "conf", "dialplan", "callcenter", "inbound.xml")
PASSWORD = "guide-test-0123456789abcdef"

# conf/vanilla/dialplan/public.xml of FreeSWITCH (signalwire/freeswitch), comments left
# out: its own extensions send 1000-1019 and the conference range to the default
# context BEFORE the public/*.xml include.
STOCK_PUBLIC_XML = """<include>
  <context name="public">
    <extension name="unloop">
      <condition field="${unroll_loops}" expression="^true$"/>
      <condition field="${sip_looped_call}" expression="^true$">
        <action application="deflect" data="${destination_number}"/>
      </condition>
    </extension>
    <extension name="outside_call" continue="true">
      <condition>
        <action application="set" data="outside_call=true"/>
        <action application="export" data="RFC2822_DATE=${strftime(%a, %d %b %Y %T %z)}"/>
      </condition>
    </extension>
    <extension name="call_debug" continue="true">
      <condition field="${call_debug}" expression="^true$" break="never">
        <action application="info"/>
      </condition>
    </extension>
    <extension name="public_extensions">
      <condition field="destination_number" expression="^(10[01][0-9])$">
        <action application="transfer" data="$1 XML default"/>
      </condition>
    </extension>
    <extension name="public_conference_extensions">
      <condition field="destination_number" expression="^(3[5-8][01][0-9])$">
        <action application="transfer" data="$1 XML default"/>
      </condition>
    </extension>
    <X-PRE-PROCESS cmd="include" data="public/*.xml"/>
  </context>
</include>
"""


def fs_cli_path(switch):
    """The fs_cli next to the switch's freeswitch binary (a source build's <prefix>/bin)."""
    with open(os.path.join(switch.rundir, "command.txt")) as fh:
        return os.path.join(os.path.dirname(fh.read().split()[0]), "fs_cli")


def fs_cli(switch, command, password=PASSWORD, home=None):
    """fs_cli -p <password> -x <command>, as the guide writes it; (returncode, output)."""
    args = [fs_cli_path(switch), "-H", "127.0.0.1", "-P", str(switch.info["esl_port"])]
    if password is not None:
        args += ["-p", password]
    env = dict(os.environ, HOME=home) if home else None
    done = subprocess.run(args + ["-T", "2000", "-x", command], capture_output=True, text=True,
                          timeout=30, env=env)
    return done.returncode, done.stdout + done.stderr


def install_stock_public_context(switch):
    with open(os.path.join(switch.rundir, "conf", "dialplan", "public.xml"), "w") as fh:
        fh.write(STOCK_PUBLIC_XML)


def run_script(switch, *extra):
    return subprocess.run(
        ["bash", SCRIPT, "--conf-dir", os.path.join(switch.rundir, "conf"), "--password", PASSWORD,
         "--owner", "root:root", "--esl-port", str(switch.info["esl_port"]),
         "--fs-cli", fs_cli_path(switch), *extra],
        capture_output=True, text=True, timeout=120)


def channel_rows(switch, password=PASSWORD):
    _, body = fs_cli(switch, "show channels as json", password)
    try:
        return json.loads(body).get("rows") or []
    except ValueError:
        return []


def wait_for_channel(switch, match, password=PASSWORD, timeout=8.0):
    """The first `show channels` row for which match(row) holds, or None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in channel_rows(switch, password):
            if match(row):
                return row
        time.sleep(0.2)
    return None


def dump(switch, uuid, password=PASSWORD):
    _, body = fs_cli(switch, f"uuid_dump {uuid} json", password)
    return json.loads(body)


def carrier_call_lands(switch, did, password=PASSWORD):
    """Calls DID from the carrier side; the inbound leg's uuid_dump once it runs `park`, else None.

    A DID the stock context sends elsewhere fails the originate (the default context
    bridges 1001 to an unregistered user: -ERR NO_USER_RESPONSE).
    """
    code, out = fs_cli(switch, f"originate sofia/gateway/carrier/{did} &echo()", password)
    if code != 0 or not out.startswith("+OK"):
        return None
    row = wait_for_channel(switch, lambda r: r["name"].startswith("sofia/external/")
                           and r["dest"] == did and r["application"] == "park",
                           password, timeout=10.0)
    return dump(switch, row["uuid"], password) if row else None


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A stock-like FreeSWITCH (ClueCon) on which the guide's script was run with --apply."""
    switch = start_real_freeswitch(tmp_path_factory.mktemp("fsguide"), "--phones", "none")
    try:
        install_stock_public_context(switch)
        assert "+OK" in fs_cli(switch, "reloadxml", "ClueCon")[1]
        done = run_script(switch, "--apply", "--current-password", "ClueCon")
        assert done.returncode == 0, done.stdout + done.stderr
        yield switch
    finally:
        stop_real_freeswitch(switch)


def test_stock_public_context_never_reaches_a_public_file_for_did_1001(tmp_path):
    """What the old guide did (a 00_ file in dialplan/public/) loses DIDs in the stock ranges."""
    switch = start_real_freeswitch(tmp_path / "fsstock", "--phones", "none")
    try:
        install_stock_public_context(switch)
        public_dir = os.path.join(switch.rundir, "conf", "dialplan", "public")
        os.makedirs(public_dir)
        with open(INBOUND_FILE) as src:
            text = src.read()
        with open(os.path.join(public_dir, "00_callcenter_inbound.xml"), "w") as dst:
            dst.write(text)
        assert "+OK" in fs_cli(switch, "reloadxml", "ClueCon")[1]
        assert carrier_call_lands(switch, "5551000", "ClueCon")["variable_cc_inbound"] == "true"
        assert carrier_call_lands(switch, "1001", "ClueCon") is None
    finally:
        stop_real_freeswitch(switch)


def test_after_step_1_fs_cli_needs_the_password_or_fs_cli_conf(installed, tmp_path):
    code, out = fs_cli(installed, "status", password="ClueCon")
    assert "Error Connecting" in out or code != 0
    assert "is ready" in fs_cli(installed, "status")[1]
    (tmp_path / ".fs_cli_conf").write_text(
        f"[default]\nhost => 127.0.0.1\nport => {installed.info['esl_port']}\n"
        f"password => {PASSWORD}\n")
    assert "is ready" in fs_cli(installed, "status", password=None, home=str(tmp_path))[1]


@pytest.mark.parametrize("did", ["1001", "3500", "5551000", "+15551230000"])
def test_carrier_calls_are_answered_and_parked_for_the_service(installed, did):
    """DIDs inside the stock ranges (1001, the conference range) and outside them."""
    leg = carrier_call_lands(installed, did)
    assert leg is not None, f"carrier call to {did} did not reach the call-center extension"
    assert leg["Caller-Context"] == "public" and leg["Answer-State"] == "answered"
    assert leg["variable_cc_inbound"] == "true"
    assert leg["variable_outside_call"] == "true"  # the stock extensions before it still run


def test_a_gateway_the_service_writes_carries_a_call_out_to_the_far_end(installed):
    gateway_dir = os.path.join(installed.rundir, "conf", "sip_profiles", "external", "cc-gateways")
    spec = GatewaySpec(name="cc-carrier", host="127.0.0.1",
                       port=installed.info["farend_sip_port"], register=False)
    write_gateway_file(gateway_dir, "cc-carrier", render_gateway_xml(spec))
    assert "+OK scan complete" in fs_cli(installed, "sofia profile external rescan")[1]
    code, out = fs_cli(installed, "originate sofia/gateway/cc-carrier/answer-guide &park()")
    assert code == 0 and out.startswith("+OK"), out
    uuid = out.split()[1]
    assert dump(installed, uuid)["variable_sip_gateway_name"] == "cc-carrier"
    # `show channels` is FreeSWITCH's own table, written by its SQL thread a moment after
    # the answer: under load the far end's row still says RINGING after originate returned.
    far_end = wait_for_channel(installed, lambda r: r["name"].startswith("sofia/farend/")
                               and r["dest"] == "answer-guide" and r["callstate"] == "ACTIVE")
    assert far_end is not None, channel_rows(installed, PASSWORD)
    # Each rescan warns about every gateway already running; they keep running.
    with open(installed.info["log_file"], errors="replace") as fh:
        assert "Ignoring duplicate gateway 'farend'" in fh.read()
    assert "external::farend" in fs_cli(installed, "sofia status gateway")[1]


def test_the_operators_profile_and_public_context_gain_one_line_each(installed):
    conf = os.path.join(installed.rundir, "conf")
    for relative in ("sip_profiles/external.xml", "dialplan/public.xml"):
        with open(os.path.join(conf, relative + ".before-callcenter")) as fh:
            before = fh.read().splitlines()
        with open(os.path.join(conf, relative)) as fh:
            after = fh.read().splitlines()
        added = [line for line in after if line not in before]
        assert len(after) == len(before) + 1 and len(added) == 1, added
        assert "X-PRE-PROCESS" in added[0]
    with open(os.path.join(conf, "sip_profiles", "external.xml")) as fh:
        profile = fh.read()
    assert 'name="ext-rtp-ip"' in profile and 'name="ext-sip-ip"' in profile
    again = run_script(installed)  # a second run changes nothing more
    assert again.returncode == 0, again.stderr
    with open(os.path.join(conf, "dialplan", "public.xml")) as fh:
        assert fh.read().count("callcenter/inbound.xml") == 1
