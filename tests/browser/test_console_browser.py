"""The agent console in headless Chromium: an agent signs in, goes ready, clicks to call,
holds and unholds, sends DTMF, ends with an outcome that is stored, and plays the call's
recording through a signed URL, seeking in it. web + events + worker on the ESL simulator."""
import uuid

import pytest

from tests.browser.conftest import new_key
from tests.conftest import wait_until

NUMBER = "15551239876"


@pytest.fixture(scope="module")
def web(stack_factory, db_url, sim):
    stack = stack_factory(db_url, sim, worker=True, DEFAULT_GATEWAY="gw1",
                          SIP_RECORDING_PATH=sim.recordings_root)
    yield stack
    stack.stop()  # its worker must not outlive this module's database


@pytest.fixture(scope="module")
def agent_id(web):
    agent = f"con-{uuid.uuid4().hex[:6]}"
    resp = web.post("/api/agents", {"id": agent, "name": "Connie", "endpoint": "user/1003",
                                    "wrapup_seconds": 60})
    assert resp.status_code == 201, resp.text
    return agent


@pytest.fixture(scope="module")
def console(web, browsers, agent_id):
    browser = browsers(web)
    browser.open("/")
    browser.sign_in(new_key(web, "agent", agent_id))
    browser.wait_text("#live-status", lambda t: t == "Live", 10, "the live feed")
    return browser


def call_of(web, call_id):
    return web.get(f"/api/calls/{call_id}").json()


def click(browser, css):
    browser.click(css)


def key(browser, pad, label):
    browser.find(f'#{pad} button[aria-label="{label}"]').click()


def test_a_supervisor_key_is_refused_on_the_console(web, browsers):
    browser = browsers(web)
    browser.open("/")
    browser.find("#api-key").send_keys(new_key(web, "supervisor"))
    browser.find("#signin-form button[type=submit]").click()
    browser.wait_text("#signin-error", lambda t: "needs an agent key" in t, 15)
    assert not browser.visible("#app")


def test_an_agent_goes_ready_calls_holds_sends_dtmf_and_ends_with_an_outcome(
        web, console, agent_id, sim):
    console.wait_text("#agent-state", lambda t: t == "logged-out", 10)
    click(console, "#btn-ready")
    console.wait_text("#agent-state", lambda t: t == "available", 15, "the agent ready")
    assert web.get(f"/api/agents/{agent_id}").json()["state"] == "available"
    for digit in NUMBER:
        key(console, "dial-keypad", digit)
    assert console.find("#dial-number").get_attribute("value") == NUMBER
    console.find("#dial-record").click()
    click(console, "#btn-call")
    console.wait_text("#cur-status", lambda t: t == "in-progress", 10, "the call answered")
    assert console.text("#cur-number") == NUMBER
    call = web.get("/api/calls/history", params={"agent_id": agent_id}).json()[0]
    assert call["to_number"] == NUMBER and call["record"] is True
    click(console, "#btn-hold")
    console.wait_text("#btn-hold", lambda t: t == "Unhold", 15)
    assert call_of(web, call["id"])["on_hold"] is True
    console.find("#btn-hold").click()
    console.wait_text("#btn-hold", lambda t: t == "Hold", 15)
    assert call_of(web, call["id"])["on_hold"] is False
    for label, digit in (("1", "1"), ("2", "2"), ("pound", "#")):
        key(console, "dtmf-keypad", label)
        console.wait_text("#dtmf-sent", lambda t, d=digit: t.endswith(d), 15)
    assert sim.channels[call["fs_uuid"]].dtmf_sent == "12#"
    # Long enough a recording to seek in: the page's own timer says when.
    console.wait_text("#cur-timer", lambda t: t >= "0:04", 10, "four seconds of talk")
    click(console, "#btn-end")
    wait_until(lambda: console.visible("#disposition"), 10, message="the disposition form")
    console.find("#outcome").send_keys("Sale")
    console.find("#notes").send_keys("wants the yearly plan")
    console.find("#disposition button[type=submit]").click()
    console.wait_text("#disposition-saved", lambda t: t == "Saved: sale", 15)
    stored = call_of(web, call["id"])
    assert stored["outcome"] == "sale" and stored["notes"] == "wants the yearly plan"
    assert stored["status"] == "completed" and stored["hold_seconds"] >= 0
    console.wait_text("#agent-state", lambda t: t == "wrap-up", 15)


def test_the_agent_plays_the_recording_and_seeks(web, console, agent_id):
    play = '#recent-body tr button[aria-label^="Play"]'
    wait_until(lambda: console.all(play), 30, message="the recording ready in recent calls")
    console.click(play)
    wait_until(lambda: console.js("const a = document.getElementById('player');"
                                  "return a.readyState >= 1 && a.duration > 3"), 10,
               message="the audio's metadata")
    src = console.js("return document.getElementById('player').src")
    assert "/api/" in src and "Bearer" not in src
    # The signed URL plays with no credentials and supports Range.
    status = console.driver.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0], {headers: {Range: 'bytes=0-99'}})"
        ".then(r => done(r.status))", src)
    assert status == 206
    console.js("const a = document.getElementById('player'); a.currentTime = 2.0; a.play();")
    wait_until(lambda: console.js("return document.getElementById('player').currentTime") > 2.3,
               10, message="playback past the seek point")


def test_the_console_passes_axe_on_a_laptop_and_a_phone(web, console, artifacts):
    click(console, "#btn-ready")  # ends the wrap-up early
    console.wait_text("#agent-state", lambda t: t == "available", 15)
    console.find("#dial-number").clear()
    console.find("#dial-number").send_keys("15551230777")
    click(console, "#btn-call")
    console.wait_text("#cur-status", lambda t: t == "in-progress", 10, "a call in progress")
    assert console.axe_serious() == []
    console.js("window.scrollTo(0, 0)")
    print("console:", console.screenshot(artifacts, "console.png"))
    console.driver.set_window_size(390, 844)
    try:
        overflow = console.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the phone layout scrolls sideways"
        assert console.axe_serious() == []
        console.js("window.scrollTo(0, 0)")
        print("console (phone):", console.screenshot(artifacts, "console-phone.png"))
    finally:
        console.driver.set_window_size(1400, 1000)
    console.find("#btn-end").click()
    wait_until(lambda: console.visible("#disposition"), 10, message="the call ended")
