"""The supervisor wallboard in headless Chromium: sign-in, live calls, quality badge,
resume after a web restart, agents/queues/alerts/charts, token renewal, accessibility,
and the offline API docs. One stack (web + events) against the ESL simulator."""
import time
import uuid

import pytest

from tests.browser.conftest import new_key, revoke_key
from tests.conftest import wait_until

TTL = 8  # seconds a token lives on short_web: the page renews it every ~6 s
BAD = {"latency_ms": 120, "jitter_ms": 55, "packet_loss_pct": 0.2}


@pytest.fixture(scope="module")
def web(stack_factory, db_url, sim):
    # Every request is "slow" here, so the performance channel has alerts to show.
    return stack_factory(db_url, sim, DEFAULT_GATEWAY="gw1", SLOW_REQUEST_SECONDS="0.000001")


@pytest.fixture(scope="module")
def short_web(stack_factory, db_url, sim):
    """A second web process on the same database whose tokens live TTL seconds (no events
    process: one per switch is enough)."""
    return stack_factory(db_url, sim, events=False, DEFAULT_GATEWAY="gw1", TOKEN_TTL=TTL)


@pytest.fixture(scope="module")
def board(web, browsers):
    browser = browsers(web)
    browser.open("/wallboard")
    browser.sign_in(new_key(web, "supervisor"))
    browser.wait_text("#live-status", lambda t: t == "Live", 10, "the live feed")
    return browser


def start_call(web, to):
    resp = web.post("/api/calls/start", {"to": to})
    assert resp.status_code == 201, resp.text
    return resp.json()


def row(board, call_id):
    """The cells' texts of a call's row (read in one script: rows change under us), or None."""
    return board.js("const tr = document.querySelector("
                    "`#calls-body tr[data-id=\"${arguments[0]}\"]`);"
                    "return tr ? [...tr.cells].map(td => td.textContent) : null;", call_id)


def live_ids(web):
    return {c["id"] for s in ("initiated", "ringing", "in-progress")
            for c in web.get("/api/calls/history", params={"status": s}).json()}


def shown_ids(board):
    return board.js("return [...document.querySelectorAll('#calls-body tr')]"
                    ".map(tr => tr.dataset.id)")


def test_a_bad_key_or_an_agent_key_gets_a_clear_message(web, browsers):
    browser = browsers(web)
    browser.open("/wallboard")
    browser.find("#api-key").send_keys("cck_not-a-real-key")
    browser.find("#signin-form button[type=submit]").click()
    message = browser.wait_text("#signin-error", lambda t: bool(t), 15, "the error message")
    assert "invalid, expired or revoked" in message
    assert not browser.visible("#app")
    browser.find("#api-key").clear()
    browser.find("#api-key").send_keys(new_key(web, "agent", "a-web"))
    browser.find("#signin-form button[type=submit]").click()
    browser.wait_text("#signin-error", lambda t: "needs a supervisor" in t, 15)
    assert not browser.visible("#app")


def test_a_started_call_appears_within_a_second_and_follows_the_switch(web, board):
    call = start_call(web, "15551230001")
    wait_until(lambda: row(board, call["id"]), 1.0, 0.02, "the call's row within 1 s")
    cells = wait_until(lambda: (lambda r: r if r and r[0] == "in-progress" else None)(
        row(board, call["id"])), 10, message="the row to show in-progress")
    assert cells[1] == "outbound" and cells[3] == "15551230001"
    first = cells[5]
    wait_until(lambda: row(board, call["id"])[5] != first, 10, message="a ticking duration")
    web.post(f"/api/calls/{call['id']}/end")
    wait_until(lambda: (lambda r: r is None or r[0] == "completed")(row(board, call["id"])), 15,
               message="the ended call to show completed or leave")
    wait_until(lambda: row(board, call["id"]) is None, 10, message="the ended row to go")


def test_a_quality_alert_turns_the_mos_badge_red(web, board):
    call = start_call(web, "15551230002")
    wait_until(lambda: (row(board, call["id"]) or [""])[0] == "in-progress", 10)
    for _ in range(3):
        resp = web.put(f"/api/calls/{call['id']}/update", {"quality": BAD})
        assert resp.status_code == 200, resp.text
    cell = f'#calls-body tr[data-id="{call["id"]}"] td.mos'
    wait_until(lambda: board.js("const td = document.querySelector(arguments[0]);"
                                "return !!td && td.classList.contains('mos-bad')", cell), 15,
               message="the MOS badge to turn red")
    colour = board.js("return getComputedStyle(arguments[0]).backgroundColor", board.find(cell))
    assert colour == "rgb(179, 38, 30)"
    assert "quality degraded" in board.find(cell).get_attribute("aria-label")
    web.post(f"/api/calls/{call['id']}/end")


def test_after_a_web_restart_the_page_resumes_without_gap_or_duplicate(web, board, sim):
    ending = start_call(web, "15551230003")
    staying = start_call(web, "15551230004")
    for call in (ending, staying):
        wait_until(lambda c=call: (row(board, c["id"]) or [""])[0] == "in-progress", 10)
    ending = web.get(f"/api/calls/{ending['id']}").json()
    web.stop("web")
    board.wait_text("#live-status", lambda t: t.startswith("Reconnecting"), 10,
                    "the visible reconnecting state")
    # While web is down the switch goes on: one call ends, a new one comes in.
    sim.hangup(ending["fs_uuid"])
    sim.inbound_call("15550009999", "1000", answer_after=0.1)
    web.start_web()
    board.wait_text("#live-status", lambda t: t == "Live", 15, "the feed to come back")
    wait_until(lambda: set(shown_ids(board)) == live_ids(web), 15,
               message="the table to match the live calls")
    ids = shown_ids(board)
    assert len(ids) == len(set(ids)), "a duplicate row"
    assert staying["id"] in ids and ending["id"] not in ids
    inbound = [i for i in ids if row(board, i)[1] == "inbound"]
    assert inbound and row(board, inbound[0])[3] == "15550009999"
    board.driver.refresh()
    board.wait_text("#live-status", lambda t: t == "Live", 10)
    wait_until(lambda: sorted(shown_ids(board)) == sorted(live_ids(web)), 10,
               message="the reloaded table to match")
    for call_id in live_ids(web):
        web.post(f"/api/calls/{call_id}/end")


def test_agents_queues_alerts_and_charts_are_shown(web, board):
    agent_id = f"wb-{uuid.uuid4().hex[:6]}"
    assert web.post("/api/agents", {"id": agent_id, "name": "Wanda",
                                    "endpoint": "user/1002"}).status_code == 201
    agent_row = f'#agents-body tr[data-id="{agent_id}"]'
    board.wait_text(agent_row, lambda t: "logged-out" in t, 15, "the new agent")
    web.post(f"/api/agents/{agent_id}/login")
    board.wait_text(agent_row, lambda t: "available" in t, 15, "the agent's new state")
    assert "Wanda" in board.text(agent_row)
    # The snapshot (REST list) says whether each agent's phone is registered: the
    # simulator has 1002 registered; a page loaded now shows it beside the state.
    board.driver.refresh()
    board.wait_text("#live-status", lambda t: t == "Live", 10)
    board.wait_text(agent_row, lambda t: "registered" in t and "available" in t, 15,
                    "the agent's phone shown as registered")
    # Queues: a table when the service has queues, else a plain "No queues."
    assert board.visible("#queues-table") or board.text("#queues-empty") == "No queues."
    board.wait_text("#alerts-list", lambda t: "Slow request" in t, 15, "a performance alert")
    wait_until(lambda: board.all("#chart-calls canvas") and board.all("#chart-sl canvas"), 10,
               message="both charts")
    total = len(web.get("/api/calls/history", params={"page_size": 500}).json())
    board.wait_text("#kpi-calls", lambda t: t.isdigit() and int(t) == total, 10,
                    "today's count")
    web.post(f"/api/agents/{agent_id}/logout")


def test_the_token_renews_across_its_expiry_and_a_revoked_key_signs_out(short_web, browsers):
    web = short_web
    browser = browsers(web)
    browser.open("/wallboard")
    name = f"renew-{uuid.uuid4().hex[:6]}"
    browser.sign_in(new_key(web, "supervisor", name=name))
    stored = "return JSON.parse(sessionStorage.getItem('cc.session.wallboard') || 'null')"
    first = browser.js(stored)["token"]
    signed_in = time.monotonic()
    wait_until(lambda: time.monotonic() - signed_in > TTL + 2, TTL + 5, 0.5, "the first expiry")
    now = browser.js(stored)
    assert now["token"] != first and now["expiresAt"] > browser.js("return Date.now()")
    me = browser.driver.execute_async_script(
        "const done = arguments[0]; fetch('/api/auth/me', {headers: {Authorization: "
        "'Bearer ' + JSON.parse(sessionStorage.getItem('cc.session.wallboard')).token}})"
        ".then(r => done(r.status))")
    assert me == 200
    call = start_call(web, "15551230005")
    wait_until(lambda: browser.all(f'#calls-body tr[data-id="{call["id"]}"]'), 15)
    web.post(f"/api/calls/{call['id']}/end")
    revoke_key(web, name)
    browser.wait_text("#signin-error", lambda t: "revoked" in t, TTL + 5,
                      "the sign-in form with the reason")
    assert not browser.visible("#app") and browser.js(stored) is None


def busy_floor(web):
    """A few agents in different states, a queue, three calls, one of poor quality."""
    tag = uuid.uuid4().hex[:4]
    ann, bob = f"ann-{tag}", f"bob-{tag}"
    for agent_id, name, phone in ((ann, "Ann Lee", "user/1001"), (bob, "Bob Ray", "user/1002")):
        web.post("/api/agents", {"id": agent_id, "name": name, "endpoint": phone})
        web.post(f"/api/agents/{agent_id}/login")
    web.post(f"/api/agents/{bob}/pause", {"reason": "lunch"})
    web.post("/api/queues", {"id": f"support-{tag}", "name": "Support",
                             "members": [{"agent_id": ann}, {"agent_id": bob}]})
    calls = [web.post("/api/calls/start", {"to": "15551230006", "agent_id": ann}).json(),
             start_call(web, "15551230007"), start_call(web, "15551230008")]
    for call in calls:
        wait_until(lambda c=call: call_status(web, c["id"]) == "in-progress", 10)
    for _ in range(3):
        web.put(f"/api/calls/{calls[2]['id']}/update", {"quality": BAD})
    return calls, (ann, bob)


def call_status(web, call_id):
    return web.get(f"/api/calls/{call_id}").json()["status"]


def test_both_layouts_pass_axe_and_screenshots_are_written(web, board, artifacts):
    calls, agents = busy_floor(web)
    wait_until(lambda: all((row(board, c["id"]) or [""])[0] == "in-progress" for c in calls), 10)
    wait_until(lambda: board.all("#calls-body td.mos-bad"), 15, message="the red badge")
    assert board.axe_serious() == []
    board.js("window.scrollTo(0, 0)")
    print("wallboard:", board.screenshot(artifacts, "wallboard.png"))
    board.driver.set_window_size(390, 844)
    try:
        overflow = board.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the phone layout scrolls sideways"
        assert board.axe_serious() == []
        board.js("window.scrollTo(0, 0)")
        print("wallboard (phone):", board.screenshot(artifacts, "wallboard-phone.png"))
    finally:
        board.driver.set_window_size(1400, 1000)
    for call in calls:
        web.post(f"/api/calls/{call['id']}/end")
    for agent_id in agents:
        web.post(f"/api/agents/{agent_id}/logout")


def test_the_api_docs_render_operations_offline(web, browsers):
    browser = browsers(web)  # resolves no host but 127.0.0.1
    browser.open("/api/docs")
    wait_until(lambda: len(browser.all(".opblock")) > 10, 15, message="the operations")
    assert any("/api/calls/start" in b.text for b in browser.all(".opblock-summary"))
    assert all(url.startswith(web.base_url) for url in browser.resources())
