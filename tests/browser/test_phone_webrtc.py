"""The browser phone end to end: headless Chromium with a fake microphone (a tone) signs in
to the console as an agent, registers over ws:// to a real FreeSWITCH, rings on a
click-to-call, answers in the page and talks to a far end that echoes; the audio FreeSWITCH
receives from the browser is not silence, the agent went ringing -> on-call -> wrap-up,
and hanging up in the page ends every leg. Also: a second tab of the same agent, the
WebSocket dropping (paused phone-offline, back when it registers again) and credentials
FreeSWITCH refuses (the page says why).

Skipped with the reason when ../shared/freeswitch, chromium, chromedriver or selenium is
missing. The FreeSWITCH is this module's own (its directory gets the one-line hook the
operator adds, freeswitch/conf/README.md).
"""
import json
import math
import os
import struct
import tempfile
import uuid
import wave

import pytest

from freeswitch.esl.directory_xml import render_directory_xml
from tests.browser.conftest import CHROMEDRIVER, CHROMIUM, FLAGS, Browser, _missing, new_key
from tests.conftest import wait_until
from tests.integration.conftest import start_real_freeswitch, stop_real_freeswitch

USER = "1005"
HOOK = '<X-PRE-PROCESS cmd="include" data="cc_agents/*.xml"/>'  # relative to directory/
MEDIA_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               "--allow-loopback-in-peer-connection")


class PhoneBrowser(Browser):
    """The conftest's Browser, with a fake microphone and camera (Chromium's beeping tone)."""

    def __init__(self, base_url):  # noqa: D107 - same as Browser, two more flag sets
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        self.profile = tempfile.mkdtemp(prefix="cc-phone-")
        flags = [f for f in FLAGS if f != "--mute-audio"] + list(MEDIA_FLAGS)
        for flag in flags + [f"--user-data-dir={self.profile}", "--window-size=1400,1000"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.base_url = base_url

    def console_log(self):
        try:
            return "\n".join(e["message"][:300] for e in self.driver.get_log("browser")[-30:])
        except Exception as exc:  # noqa: BLE001 - only for a failure message
            return f"(no console log: {exc})"

    def attr(self, css, name):
        return self.js("const n = document.querySelector(arguments[0]);"
                       "return n ? n.getAttribute(arguments[1]) : null;", css, name)

    def wait_attr(self, css, name, value, timeout=15):
        try:
            return wait_until(lambda: self.attr(css, name) == value, timeout, 0.1,
                              f"{css} {name}={value}")
        except AssertionError as exc:
            raise AssertionError(f"{exc} (now {self.attr(css, name)!r}, problem: "
                                 f"{self.text('#phone-problem')!r})\n{self.console_log()}")


def install_directory_hook(switch):
    """The operator's one-time step on this switch: include directory/cc_agents/*.xml in the
    domain's first <users>, before the static users (so a generated user wins)."""
    conf = switch.info["conf_dir"]
    folder = os.path.join(conf, "directory", "cc_agents")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "_placeholder.xml"), "w") as fh:
        fh.write("<include></include>\n")
    path = os.path.join(conf, "directory", "default.xml")
    with open(path) as fh:
        text = fh.read()
    if HOOK not in text:
        text = text.replace("<users>", "<users>\n" + HOOK, 1)
        with open(path, "w") as fh:
            fh.write(text)
    assert "+OK" in switch.cli("reloadxml")
    return folder


@pytest.fixture(scope="module")
def switch(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    switch = start_real_freeswitch(tmp_path_factory.mktemp("fs-phone"), "--phones", "none")
    yield switch
    stop_real_freeswitch(switch)


@pytest.fixture(scope="module")
def web(stack_factory, db_url, switch):
    folder = install_directory_hook(switch)
    stack = stack_factory(db_url, None, **switch.env, DEFAULT_GATEWAY="farend",
                          FREESWITCH_DIRECTORY_DIR=folder, PHONE_CHECK_INTERVAL="0.5",
                          PHONE_WS_URL=f"ws://127.0.0.1:{switch.info['internal_ws_port']}")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def agent_id(web):
    agent = f"web-{uuid.uuid4().hex[:6]}"
    resp = web.post("/api/agents", {"id": agent, "name": "Wendy Web", "wrapup_seconds": 3,
                                    "endpoint": f"user/{USER}"})
    assert resp.status_code == 201, resp.text
    return agent


@pytest.fixture
def tabs(switch):
    """Browsers for one test; quitting them closes their WebSockets (unregistered below)."""
    made = []

    def make(stack):
        browser = PhoneBrowser(stack.base_url)
        made.append(browser)
        return browser

    yield make
    # A test that failed mid-call leaves its call up (the echo far end never hangs up) and
    # the module's agent on-call: end every call so the next test starts from wrap-up.
    if switch.channels():
        switch.cli("hupall NORMAL_CLEARING")
        wait_until(lambda: not switch.channels(), 15, 0.1, "the calls left over to end")
    for browser in made:
        browser.quit()
    switch.cli(f"sofia profile internal flush_inbound_reg {USER}@127.0.0.1")


def open_phone(tabs, web, agent_id):
    """A new browser signed in as the agent, its phone turned on and registered."""
    browser = tabs(web)
    browser.open("/")
    browser.sign_in(new_key(web, "agent", agent_id))
    wait_until(lambda: browser.visible("#phone-enable"), 10, message="the phone's switch")
    browser.find("#phone-enable").click()
    browser.wait_attr("#phone-reg", "data-state", "registered")
    return browser


def registrations(switch):
    rows = json.loads(switch.cli("show registrations as json") or "{}").get("rows") or []
    return [r for r in rows if r.get("reg_user") == USER]


def contacts(switch):
    """The contacts sofia has for the user (every tab); `show registrations` is the core's
    table, which keeps one row per user unless switch.conf.xml allows several."""
    blocks = switch.cli("sofia status profile internal reg").split("Call-ID:")[1:]
    return [b for b in blocks if f"User:       \t{USER}@" in b or f"Auth-User:  \t{USER}\n" in b]


def agent(web, agent_id):
    return web.get(f"/api/agents/{agent_id}").json()


def webrtc_leg(switch):
    rows = json.loads(switch.cli("show channels as json") or "{}").get("rows") or []
    legs = [r for r in rows if r.get("name", "").startswith("sofia/internal/")]
    return legs[0]["uuid"] if legs else None


def loudness(path):
    """(20-ms frames louder than RMS 500, all 20-ms frames, the whole file's RMS)."""
    with wave.open(path) as wav:
        frames, window = wav.readframes(wav.getnframes()), wav.getframerate() // 50
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    rms = lambda part: math.sqrt(sum(s * s for s in part) / max(1, len(part)))  # noqa: E731
    chunks = [samples[i:i + window] for i in range(0, len(samples) - window + 1, window)]
    return sum(1 for c in chunks if rms(c) > 500), len(chunks), rms(samples)


def record_what_the_browser_sends(switch, leg, folder, seconds=3.0):
    """Record only what FreeSWITCH reads from the browser's leg, for `seconds` of audio (at
    the leg's own rate: 48 kHz for Opus, so never counted in 8-kHz bytes)."""
    path = os.path.join(folder, f"from-browser-{uuid.uuid4().hex[:6]}.wav")
    reply = (switch.cli(f"uuid_getvar {leg} read_rate") or "").strip()
    rate = int(reply) if reply.isdigit() else 48000
    switch.cli(f"uuid_setvar {leg} RECORD_READ_ONLY true")
    assert "+OK" in switch.cli(f"uuid_record {leg} start {path}")
    wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > rate * 2 * seconds,
               20, 0.1, "the recording to grow")
    switch.cli(f"uuid_record {leg} stop {path}")
    return path


def received_audio(browser):
    """What the page's peer connection received: packets and the audio level (getStats)."""
    return browser.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const sdh = window.ccPhone.call && window.ccPhone.call.sessionDescriptionHandler;
        if (!sdh) { done(null); return; }
        sdh.peerConnection.getStats().then((stats) => {
          let got = null;
          stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio")
            got = {packets: s.packetsReceived, energy: s.totalAudioEnergy || 0}; });
          done(got);
        });""")


def test_a_click_to_call_rings_the_browser_which_answers_talks_and_hangs_up(
        web, switch, tabs, agent_id, tmp_path):
    browser = open_phone(tabs, web, agent_id)
    wait_until(lambda: len(registrations(switch)) == 1, 10, 0.1, "`show registrations`")
    assert web.post(f"/api/agents/{agent_id}/login").json()["state"] == "available"
    assert agent(web, agent_id)["phone_registered"] is True

    resp = web.post("/api/calls/start", {"to": f"echo-{uuid.uuid4().hex[:6]}",
                                         "agent_id": agent_id})
    assert resp.status_code in (200, 201, 202), resp.text
    call_id = resp.json()["id"]
    browser.wait_attr("#phone", "data-call", "ringing")
    assert browser.text("#phone-caller")
    assert agent(web, agent_id)["state"] == "ringing"

    browser.find("#phone-answer").click()
    browser.wait_attr("#phone", "data-call", "active")
    wait_until(lambda: agent(web, agent_id)["state"] == "on-call", 15, 0.1, "on-call")
    # The far end echoes what the browser sends: audio energy coming back means the
    # media went both ways (ICE, DTLS-SRTP, the bridge).
    heard = wait_until(lambda: (lambda s: s if s and s["energy"] > 0 else None)(
        received_audio(browser)), 15, 0.2, "the echo to reach the browser")
    assert heard["packets"] > 0
    leg = wait_until(lambda: webrtc_leg(switch), 10, 0.1, "the browser's leg")
    wav = record_what_the_browser_sends(switch, leg, str(tmp_path))
    # Chromium's fake microphone beeps (~140 ms) once a second, silent in between: 3 s of
    # it hold at least two beeps, i.e. a dozen loud 20-ms frames; silence holds none.
    loud, total, rms = loudness(wav)
    assert loud >= 5, f"FreeSWITCH heard silence from the browser: {loud} of {total} " \
        f"20-ms frames loud, RMS {rms:.1f}"

    browser.find("#phone-mute").click()
    assert browser.attr("#phone-mute", "aria-pressed") == "true"
    browser.find("#phone-mute").click()
    browser.find("#phone-hold").click()
    browser.wait_attr("#phone", "data-call", "held")
    browser.find("#phone-hold").click()
    browser.wait_attr("#phone", "data-call", "active")
    browser.find('#phone-dtmf button[data-key="5"]').click()

    browser.find("#phone-hangup").click()
    browser.wait_attr("#phone", "data-call", "idle")
    wait_until(lambda: not switch.channels(), 15, 0.1, "every leg to end")
    wait_until(lambda: web.get(f"/api/calls/{call_id}").json()["status"] in
               ("completed", "ended"), 15, 0.1, "the call to end")
    wait_until(lambda: agent(web, agent_id)["state"] in ("wrap-up", "available"), 15, 0.1,
               "wrap-up")
    trail = [c["to_state"] for c in web.get(f"/api/agents/{agent_id}/states").json()]
    assert trail[-3:] == ["ringing", "on-call", "wrap-up"] or \
        trail[-4:] == ["ringing", "on-call", "wrap-up", "available"]



def ready(web, agent_id):
    """Make the agent available (from wrap-up, paused or logged out)."""
    def step():
        state = agent(web, agent_id)["state"]
        action = {"wrap-up": "ready", "paused": "resume", "logged-out": "login"}.get(state)
        if action:  # 409 until FreeSWITCH lists the new registration: try again
            web.post(f"/api/agents/{agent_id}/{action}")
        return agent(web, agent_id)["state"] == "available"
    wait_until(step, 15, 0.2, "available")


def test_a_second_tab_takes_the_phone_over_and_only_the_newest_rings(
        web, switch, tabs, agent_id):
    """Documented behaviour (README): one browser phone per agent, the newest wins. The
    console opened in a second tab turns the phone on there (the agent turned it on in this
    browser); the first tab switches its phone off and says why; calls ring the second."""
    browser = open_phone(tabs, web, agent_id)
    first = browser.driver.current_window_handle
    browser.driver.switch_to.new_window("tab")
    browser.open("/")
    browser.sign_in(new_key(web, "agent", agent_id))
    browser.wait_attr("#phone-reg", "data-state", "registered")  # on by itself: newest
    second = browser.driver.current_window_handle
    browser.driver.switch_to.window(first)
    browser.wait_attr("#phone-reg", "data-state", "off")
    assert "another tab" in browser.text("#phone-problem")
    wait_until(lambda: len(contacts(switch)) == 1, 10, 0.1, "one registration")
    ready(web, agent_id)
    web.post("/api/calls/start", {"to": f"echo-{uuid.uuid4().hex[:6]}", "agent_id": agent_id})
    browser.driver.switch_to.window(second)
    browser.wait_attr("#phone", "data-call", "ringing")
    browser.find("#phone-answer").click()
    wait_until(lambda: agent(web, agent_id)["state"] == "on-call", 15, 0.1, "on-call")
    browser.find("#phone-hangup").click()
    wait_until(lambda: not switch.channels(), 15, 0.1, "every leg to end")
    browser.driver.switch_to.window(first)
    assert browser.attr("#phone", "data-call") == "idle"  # the old tab never rang


def test_when_the_websocket_drops_the_agent_is_paused_until_the_phone_registers_again(
        web, switch, tabs, agent_id):
    browser = open_phone(tabs, web, agent_id)
    ready(web, agent_id)
    browser.js("window.ccPhone.simulateNetworkDrop(4000)")  # the network goes for 4 s
    browser.wait_attr("#phone-reg", "data-state", "offline", 5)
    assert "paused meanwhile" in browser.text("#phone-problem")
    wait_until(lambda: (lambda a: (a["state"], a["state_reason"]) == ("paused", "phone-offline"))(
        agent(web, agent_id)), 15, 0.1, "the agent paused (phone-offline)")
    browser.wait_attr("#phone-reg", "data-state", "registered", 20)  # with backoff
    wait_until(lambda: agent(web, agent_id)["state"] == "available", 15, 0.1,
               "the agent available again")
    reasons = [(c["to_state"], c["reason"]) for c in
               web.get(f"/api/agents/{agent_id}/states").json()][-2:]
    assert reasons == [("paused", "phone-offline"), ("available", None)]


def test_credentials_freeswitch_refuses_are_explained_on_the_page(web, switch, tabs, agent_id):
    """The switch has other credentials than the service (e.g. FREESWITCH_DIRECTORY_DIR
    points at a folder it does not include): the page says FreeSWITCH refused them."""
    folder = web.env["FREESWITCH_DIRECTORY_DIR"]
    path = os.path.join(folder, "cc_agents.xml")
    with open(path) as fh:
        good = fh.read()
    with open(path, "w") as fh:
        fh.write(render_directory_xml([(USER, "not-the-password-at-all", "Wendy")]))
    switch.cli("reloadxml")
    try:
        browser = tabs(web)
        browser.open("/")
        browser.sign_in(new_key(web, "agent", agent_id))
        wait_until(lambda: browser.visible("#phone"), 10, message="the phone")
        if browser.visible("#phone-enable"):
            browser.find("#phone-enable").click()
        browser.wait_attr("#phone-reg", "data-state", "refused", 20)
        assert "refused the phone's credentials" in browser.text("#phone-problem")
        assert "403" in browser.text("#phone-problem")
    finally:
        with open(path, "w") as fh:
            fh.write(good)
        switch.cli("reloadxml")
    # an admin rotation writes the directory again; the page is given the new password
    rotated = web.post(f"/api/agents/{agent_id}/phone/credentials")
    assert rotated.status_code == 200 and rotated.json()["username"] == USER
    assert rotated.headers["Cache-Control"] == "no-store"
