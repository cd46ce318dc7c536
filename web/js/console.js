// The agent console: state buttons, dial pad, the current call and its controls,
// disposition after the call, and the agent's recent calls with recording playback.
import { LiveFeed } from "./live.js";
import { mountPhone } from "../phone/phone.js";  // the browser phone (web/phone, issue 15)
import { Session, describeError } from "./session.js";
import { wireSignIn } from "./signin.js";
import { $, LIVE_STATUSES, announce, el, localTime, parseTime, setText, since, clock } from "./util.js";

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
const STATE_POLL_MS = 2000;

const session = new Session("console");
let feed = null;
let agent = null;
let current = null;     // the live call
let lastEnded = null;   // the call the disposition form is for
let muted = false;
const closed = new Set(); // calls ended (or being ended): late live messages cannot revive them
let pollTimer = null;
let phone = null;       // the browser phone (off until the agent turns it on)

function showError(err) {
  const box = $("#console-error");
  if (!err) { box.hidden = true; return; }
  box.textContent = typeof err === "string" ? err : describeError(err);
  box.hidden = false;
}

async function act(fn, done) {
  showError(null);
  try {
    const result = await fn();
    if (done) done(result);
    return result;
  } catch (err) {
    showError(err);
    return null;
  }
}

// ----- agent state ----------------------------------------------------------------
const READY_ACTION = { "logged-out": "login", paused: "resume", "wrap-up": "ready" };

function showAgent(a) {
  agent = a;
  const label = a.state_reason ? `${a.state} (${a.state_reason})` : a.state;
  const node = $("#agent-state");
  setText(node, label);
  node.className = `state state-${a.state}`;
  $("#btn-ready").disabled = !READY_ACTION[a.state];
  $("#btn-pause").disabled = !["available", "wrap-up"].includes(a.state);
  $("#btn-logout").disabled = !["available", "paused", "wrap-up"].includes(a.state);
  $("#btn-call").disabled = a.state !== "available" || !!current;
}

async function refreshAgent() {
  if (!session.signedIn) return;
  try { showAgent(await session.get(`/api/agents/${encodeURIComponent(session.agentId)}`)); } catch (err) {
    if (err.status === 404) showError("No agent is set up for your key's agent id; ask an admin to create it.");
  }
}

function agentAction(action, body) {
  return act(() => session.post(`/api/agents/${encodeURIComponent(session.agentId)}/${action}`, body), (a) => {
    showAgent(a);
    announce(`State: ${a.state}`);
  });
}

// ----- the current call ---------------------------------------------------------------
function numberOf(call) {
  return (call.direction === "inbound" ? call.from_number : call.to_number) || "–";
}

function showCall(call) {
  if (call && LIVE_STATUSES.has(call.status)) {
    if (!current || current.id !== call.id) { muted = false; setText($("#dtmf-sent"), ""); }
    current = call;
  } else {
    if (call && current && call.id === current.id) showDisposition(call);
    current = null;
  }
  const c = current;
  $("#current").hidden = !c;
  $("#current-none").hidden = !!c;
  if (c) {
    setText($("#cur-number"), numberOf(c));
    setText($("#cur-status"), c.on_hold ? `${c.status} · on hold` : c.status);
    const answered = c.status === "in-progress";
    for (const id of ["#btn-hold", "#btn-mute", "#btn-blind", "#btn-attended"]) $(id).disabled = !answered;
    $$keys("#dtmf-keypad").forEach((b) => { b.disabled = !answered; });
    const hold = $("#btn-hold");
    setText(hold, c.on_hold ? "Unhold" : "Hold");
    hold.setAttribute("aria-pressed", String(!!c.on_hold));
    const mute = $("#btn-mute");
    setText(mute, muted ? "Unmute" : "Mute");
    mute.setAttribute("aria-pressed", String(muted));
    const consulting = !!c.consult_leg_uuid;
    $("#btn-complete").hidden = !consulting;
    $("#btn-cancel").hidden = !consulting;
    $("#btn-attended").hidden = consulting;
    $("#btn-blind").hidden = consulting;
  }
  if (agent) showAgent(agent);
  tickTimer();
}

function $$keys(selector) { return [...$(selector).querySelectorAll("button")]; }

function tickTimer() {
  if (!current) return;
  const start = current.answered_at || current.created_at;
  setText($("#cur-timer"), since(start));
}

function callAction(action, body, after) {
  const call = current;
  if (!call) return null;
  return act(() => session.post(`/api/calls/${call.id}/${action}`, body), (updated) => {
    if (after && after(updated) === "done") return;
    if (updated && updated.agent_id && updated.agent_id !== session.agentId) {
      // Transferred away: the call is no longer ours to show; disposition for our part.
      current = null;
      showDisposition(updated);
      showCall(null);
    } else if (updated) {
      showCall(updated);
    }
  });
}

function showDisposition(call) {
  closed.add(call.id);
  const same = lastEnded && lastEnded.id === call.id && !$("#disposition").hidden;
  lastEnded = call;
  refreshRecent();
  if (same) return;  // the form is open for this call already: keep what the agent typed
  $("#disposition").hidden = false;
  $("#outcome").value = call.outcome || "";
  $("#notes").value = call.notes || "";
  setText($("#disposition-saved"), "");
}

// ----- recent calls and recordings ----------------------------------------------------
async function refreshRecent() {
  if (!session.signedIn) return;
  let rows;
  try {
    rows = await session.get(`/api/calls/history?agent_id=${encodeURIComponent(session.agentId)}&page_size=10`);
  } catch { return; }
  const body = $("#recent-body");
  body.replaceChildren(...rows.map(recentRow));
  $("#recent-empty").hidden = rows.length > 0;
}

function recentRow(call) {
  const rec = call.recording;
  let cell;
  if (rec && rec.status === "ready") {
    cell = el("button", { type: "button", class: "small", text: "Play", "aria-label": `Play the recording of the call to ${numberOf(call)}`, onclick: () => play(call) });
  } else {
    cell = rec ? rec.status : "–";
  }
  const talk = call.talk_seconds ?? call.billsec;
  return el("tr", { dataset: { id: call.id } },
    el("td", { text: localTime(call.created_at) }), el("td", { text: numberOf(call) }),
    el("td", { text: call.status }), el("td", { text: Number.isFinite(talk) ? clock(talk) : "–" }),
    el("td", { text: call.outcome || "–" }), el("td", {}, cell));
}

async function play(call) {
  await act(() => session.get(`/api/calls/${call.id}/recording/url?format=mp3`), (signed) => {
    const player = $("#player");
    $("#player-box").hidden = false;
    setText($("#player-title"), `Recording of the call to ${numberOf(call)}, ${localTime(call.created_at)}`);
    player.src = signed.url;
    player.play().catch(() => {});
    player.focus();
  });
}

// ----- live feed ----------------------------------------------------------------------
function onMessage(msg) {
  if (msg.channel === "calls") {
    const call = msg.data;
    if (!LIVE_STATUSES.has(call.status)) closed.add(call.id);
    else if (closed.has(call.id)) return;
    if (call.agent_id === session.agentId || (current && call.id === current.id)) {
      if (current && call.id === current.id && parseTime(call.updated_at) < parseTime(current.updated_at)) return;
      if (LIVE_STATUSES.has(call.status) || (current && call.id === current.id)) showCall(call);
      if (!LIVE_STATUSES.has(call.status)) refreshRecent();
    }
    refreshAgentSoon();
  } else if (msg.channel === "recordings") {
    refreshRecent();
  }
}

let agentSoon = null;
function refreshAgentSoon() {
  clearTimeout(agentSoon);
  agentSoon = setTimeout(refreshAgent, 150);
}

async function snapshotCall() {
  for (const status of ["in-progress", "ringing", "initiated"]) {
    const rows = await session.get(`/api/calls/history?agent_id=${encodeURIComponent(session.agentId)}&status=${status}&page_size=1`);
    if (rows.length) { showCall(rows[0]); return; }
  }
  showCall(null);
}

// ----- wiring -------------------------------------------------------------------------
function buildKeypad(box, onKey) {
  for (const key of KEYS) {
    box.append(el("button", { type: "button", class: "key", text: key, "aria-label": key === "*" ? "star" : key === "#" ? "pound" : key, onclick: () => onKey(key) }));
  }
}

function wire() {
  buildKeypad($("#dial-keypad"), (key) => { const input = $("#dial-number"); input.value += key; });
  buildKeypad($("#dtmf-keypad"), (key) => callAction("dtmf", { digits: key }, () => {
    $("#dtmf-sent").textContent += key;
    announce(`Sent ${key}`);
  }));
  $("#btn-ready").addEventListener("click", () => agent && agentAction(READY_ACTION[agent.state]));
  $("#btn-pause").addEventListener("click", () => agentAction("pause", { reason: $("#pause-reason").value }));
  $("#btn-logout").addEventListener("click", () => agentAction("logout"));
  $("#dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { to: $("#dial-number").value.trim(), agent_id: session.agentId };
    const gateway = $("#dial-gateway").value.trim();
    if (gateway) body.gateway = gateway;
    if ($("#dial-record").checked) body.record = true;
    $("#disposition").hidden = true;
    act(() => session.post("/api/calls/start", body), (call) => { showCall(call); refreshAgentSoon(); announce(`Calling ${body.to}`); });
  });
  $("#btn-hold").addEventListener("click", () => callAction(current && current.on_hold ? "unhold" : "hold"));
  $("#btn-mute").addEventListener("click", () => callAction(muted ? "unmute" : "mute", undefined, () => { muted = !muted; }));
  $("#btn-end").addEventListener("click", () => callAction("end", {}, (call) => {
    // The hang-up is under way; the call.ended message confirms it.
    if (call) showDisposition(call);
    if (current && call && current.id === call.id) current = null;
    showCall(null);
    return "done";
  }));
  $("#transfer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const kind = $("#transfer-kind").value;
    const body = { [kind]: $("#transfer-target").value.trim() };
    if (event.submitter && event.submitter.value === "attended") body.attended = true;
    callAction("transfer", body);
  });
  $("#btn-complete").addEventListener("click", () => callAction("transfer/complete"));
  $("#btn-cancel").addEventListener("click", () => callAction("transfer/cancel"));
  $("#disposition").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!lastEnded) return;
    const body = { outcome: $("#outcome").value, notes: $("#notes").value };
    act(() => session.put(`/api/calls/${lastEnded.id}/update`, body), (call) => {
      lastEnded = call;
      setText($("#disposition-saved"), `Saved: ${call.outcome}`);
      refreshRecent();
    });
  });
}

function showStatus(state, detail) {
  const node = $("#live-status");
  node.dataset.state = state;
  setText(node, { live: "Live", reconnecting: "Reconnecting…", degraded: "Live updates paused", connecting: "Connecting…" }[state] || state);
  node.title = detail || "";
}

function start() {
  showError(null);
  feed = new LiveFeed(session, ["calls", "recordings"], {
    message: onMessage,
    status: showStatus,
    ready: () => { snapshotCall(); refreshRecent(); },
    resync: () => snapshotCall(),
  });
  feed.start();
  refreshAgent();
  refreshRecent();
  pollTimer = setInterval(refreshAgent, STATE_POLL_MS);
  phone = mountPhone($("#app"), session);
}

function stop() {
  if (phone) phone.stop();
  phone = null;
  if (feed) feed.stop();
  feed = null;
  clearInterval(pollTimer);
  agent = null; current = null; lastEnded = null;
  $("#recent-body").replaceChildren();
  $("#disposition").hidden = true;
  $("#player").removeAttribute("src");
  $("#player-box").hidden = true;
  showStatus("offline");
}

wire();
setInterval(() => { tickTimer(); if (agent) setText($("#agent-since"), since(agent.state_since)); }, 1000);
wireSignIn(session, {
  onSignedIn: start,
  onSignedOut: stop,
  accept: (s) => (s.agentId ? null : "The agent console needs an agent key (one created with --agent-id); supervisors use the wallboard."),
});
